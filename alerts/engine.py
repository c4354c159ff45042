"""The alarm engine: the parts of ``alerts`` wired together, and its background loops.

Everything here is built from settings and the app's shared resources (clock, sessions, bus,
jurisdiction tree); the cleanup context in :mod:`alerts.component` starts it and hands its
loops to the app's TaskSupervisor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.directory import SubjectDirectory
from alerts.ingest import Ingestor
from alerts.leave import LeaveBook, LeaveWatcher
from alerts.models import (
    AlarmKind,
    Checkin,
    CheckinPlan,
    DeviceEvent,
    Leave,
    LocationFix,
    SubjectPlan,
    Suppression,
)
from alerts.plans import Plan, PlanBook, plan_settings
from alerts.raising import AlarmRaiser, Fire
from alerts.ratelimit import TokenBuckets
from alerts.rules_device import DeviceRules
from alerts.rules_location import LocationRules
from alerts.severity import SeverityTable
from alerts.stats import set_active_plans
from alerts.suppression import SuppressionCache
from alerts.watcher import DeadlineWatcher
from alerts.writer import GroupWriter
from center.bus import Bus
from center.clock import Clock
from center.jurisdictions import JurisdictionTree
from center.tasks import TaskSupervisor
from center.topics import Event
from config.demo_city import point_in_city
from config.settings import Settings

_LOGGER = logging.getLogger(__name__)
_MAINTENANCE_S = 60.0
_RETENTION_EVERY = 60  # maintenance rounds between retention purges


class AlertEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        tree: JurisdictionTree,
        in_city: Callable[[float, float], bool] = point_in_city,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.tree = tree
        self.plans = PlanBook(plan_settings(settings))
        self.directory = SubjectDirectory(self.plans)
        self.suppressions = SuppressionCache()
        self.leaves = LeaveBook()
        self.severity = SeverityTable(settings.alarm_severity)
        self.raiser = AlarmRaiser(
            sessionmaker, bus, self.severity, self.suppressions, name_of=self.subject_name
        )
        self.watcher = DeadlineWatcher(
            clock=clock,
            sessionmaker=sessionmaker,
            directory=self.directory,
            plans=self.plans,
            raiser=self.raiser,
            catchup_s=self._catchup_s(settings),
        )
        self.leave_watcher = LeaveWatcher(
            clock=clock,
            sessionmaker=sessionmaker,
            book=self.leaves,
            directory=self.directory,
            raiser=self.raiser,
            grace_s=self.plans.cfg.grace_s,
        )
        self.locations = LocationRules(
            leaves=self.leaves,
            in_city=in_city,
            consecutive=settings.oob_consecutive_fixes,
            max_accuracy_m=settings.location_max_accuracy_m,
            separation_m=settings.separation_m,
            fresh_s=settings.separation_fresh_s,
        )
        self.devices = DeviceRules(offline_after_s=settings.device_offline_min * 60)
        # One silence sweep at a time: a sweep marks devices offline before it stores their
        # alarms, so a second sweep running meanwhile would find nothing and return before
        # those alarms exist. Serialised, a sweep returns only once every device it saw
        # silent has its alarm stored, whichever sweep noticed it first.
        self._silence_lock = asyncio.Lock()
        self.writer = GroupWriter(sessionmaker)
        self.ingestor = Ingestor(
            clock=clock,
            sessionmaker=sessionmaker,
            bus=bus,
            tree=tree,
            directory=self.directory,
            plans=self.plans,
            watcher=self.watcher,
            raiser=self.raiser,
            leaves=self.leaves,
            locations=self.locations,
            devices=self.devices,
            writer=self.writer,
            in_city=in_city,
            checkin_retention=timedelta(days=settings.checkin_retention_days),
            location_retention=timedelta(hours=settings.location_retention_h),
        )
        self.rate = TokenBuckets(
            clock, rate_per_s=settings.ingest_rate_per_s, burst=settings.ingest_burst
        )

    def __repr__(self) -> str:
        return f"<AlertEngine {len(self.directory)} subjects, {len(self.plans.plans)} plans>"

    @staticmethod
    def _catchup_s(settings: Settings) -> float:
        catchup = settings.alarm_catchup_h * 3600
        if settings.demo and settings.simulator and settings.demo_window_s > 0:
            # Demo windows are seconds long: a night's downtime is not thousands of windows.
            catchup = min(catchup, 2 * settings.demo_window_s)
        return catchup

    def subject_name(self, subject_id: str) -> str:
        idx = self.directory.index.get(subject_id)
        return self.directory.names[idx] if idx is not None else ""

    async def start(self) -> None:
        """Load plans, subjects, suppressions, leaves and device state; build the heap."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            plan_rows = (
                await session.execute(select(CheckinPlan.id, CheckinPlan.spec, CheckinPlan.grace_s))
            ).all()
            assignments = (
                await session.execute(select(SubjectPlan.subject_id, SubjectPlan.plan_id))
            ).all()
            self.plans.load_rows(
                [(str(a), str(b), c) for a, b, c in plan_rows],
                [(str(a), str(b)) for a, b in assignments],
            )
            await self.directory.load(session)
            await self.suppressions.reload(session, now)
            await self.leaves.reload(session)
            await self.devices.load(session, now - timedelta(hours=24))
        await self.watcher.start()
        set_active_plans(self.plans)

    def spawn(self, tasks: TaskSupervisor) -> None:
        tasks.spawn("alerts-ingest-writer", self.writer.run())
        tasks.spawn("alerts-deadline-watcher", self.watcher.run())
        tasks.spawn("alerts-leave-watcher", self.leave_watcher.run())
        tasks.spawn("alerts-maintenance", self.maintenance())

    # -- staff actions (the web layer authorizes and audits) -------------------------------------

    def leave_added(self, row: Leave) -> None:
        self.leaves.add(row)
        self.leave_watcher.poke()

    def suppression_added(self, row: Suppression) -> None:
        self.suppressions.add(row)

    async def reload_plans(self) -> set[int]:
        """Re-read ``checkin_plans`` and ``subject_plans``; re-plan the deadline watcher for
        every plan whose windows changed (a live edit here or on another instance); returns
        their indexes. A level's plan keeps its index, so its subjects follow without being
        reloaded; a subject whose own plan was set or cleared is moved to its new index."""
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(select(CheckinPlan.id, CheckinPlan.spec, CheckinPlan.grace_s))
            ).all()
            assignments = (
                await session.execute(select(SubjectPlan.subject_id, SubjectPlan.plan_id))
            ).all()
        before = {p.id: (p.spec, p.grace_s) for p in self.plans.plans}
        self.plans.load_rows([(str(a), str(b), c) for a, b, c in rows], [])
        changed = {
            i for i, p in enumerate(self.plans.plans) if before.get(p.id) != (p.spec, p.grace_s)
        }
        # A per-subject plan set or cleared moves that subject to another plan index: the
        # watcher checks it against that plan from its next closing window.
        if self.plans.set_overrides([(str(a), str(b)) for a, b in assignments]):
            self.directory.reassign_plans()
        self.watcher.replan(changed)
        set_active_plans(self.plans)
        return changed

    def plan_of(self, subject_id: str, level: str) -> tuple[Plan, bool]:
        """The plan a subject is checked against, and whether it is its own (an override)."""
        idx = self.plans.overrides.get(subject_id)
        if idx is not None:
            return self.plans.plans[idx], True
        return self.plans.plans[self.plans.plan_index(subject_id, level)], False

    def suppression_removed(self, row: Suppression) -> None:
        self.suppressions.remove(row.id, row.subject_id)

    def leave_removed(self, row: Leave) -> None:
        self.leaves.remove(row.subject_id, row.id)
        self.leave_watcher.poke()

    # -- maintenance --------------------------------------------------------------------------

    async def maintenance(self) -> None:
        """Every minute: device silence and shared caches; every hour: retention."""
        rounds = 0
        while True:
            await self.clock.sleep(_MAINTENANCE_S)
            rounds += 1
            try:
                await self.check_silence()
                async with self.sessionmaker() as session:
                    await self.suppressions.reload(session, self.clock.now())
                await self.reconcile_late()
                if rounds % _RETENTION_EVERY == 0:
                    await self.purge(self.clock.now())
            except Exception:
                _LOGGER.exception("alarm engine maintenance failed; next round in a minute")

    async def reconcile_late(self) -> int:
        """Every alarm whose window has a stored late check-in becomes ``late_checkin``
        (see :meth:`AlarmRaiser.reconcile_late`); windows of the last two lateness periods
        and a day, which covers every window a late check-in can still belong to."""
        now = self.clock.now()
        since = now - timedelta(seconds=2 * self.plans.lateness_s) - timedelta(days=1)
        async with self.sessionmaker() as session:
            changed = await self.raiser.reconcile_late(session, since, now)
            await session.commit()
        if changed:
            _LOGGER.info("reconciled %d late check-ins onto their alarms", len(changed))
            await self.raiser.publish([(Event.ALARM_UPDATED, r) for r in changed])
        return len(changed)

    async def check_silence(self) -> int:
        """Raise ``device_offline`` for devices silent past the limit; returns how many."""
        async with self._silence_lock:
            return await self._sweep_silence()

    async def _sweep_silence(self) -> int:
        now = self.clock.now()
        fires = []
        for subject_id, device_id, seen in self.devices.silent(now.timestamp()):
            info = self.directory.get(subject_id)
            if info is None:
                continue
            fires.append(
                Fire(
                    str(AlarmKind.DEVICE_OFFLINE),
                    info,
                    now,
                    {
                        "device_id": device_id,
                        "reason": "silence",
                        "last_seen": datetime.fromtimestamp(seen, now.tzinfo).isoformat(),
                    },
                )
            )
        if fires:
            await self.raiser.fire(fires, now)
        return len(fires)

    async def purge(self, now: datetime) -> None:
        """Drop history past retention (the detail panel shows 14 days of check-ins)."""
        keep = now - timedelta(days=self.settings.checkin_retention_days)
        keep_fixes = now - timedelta(hours=self.settings.location_retention_h)
        async with self.sessionmaker() as session:
            await session.execute(delete(Checkin).where(Checkin.at < keep))
            await session.execute(delete(DeviceEvent).where(DeviceEvent.at < keep))
            await session.execute(delete(LocationFix).where(LocationFix.at < keep_fixes))
            await session.commit()
