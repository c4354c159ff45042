"""Ingestion of check-ins, device events and location fixes (one transaction per request).

Every item is validated alone and answered alone: a bad item gets its own error and never
costs its neighbours. Idempotency is the unique ``event_id``: rows go in with
``ON CONFLICT (event_id) DO NOTHING RETURNING``, and an item whose id was already stored is
answered ``duplicate`` with what the first delivery recorded — nothing changes.

After the commit, and only then, the in-memory state moves (the watcher's satisfied flags,
location and device rules), late check-ins are attached to their ``no_checkin`` alarms in a
second transaction (see ``DeadlineWatcher._sweep_late`` for why it must be separate), and
bus events go out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.directory import SubjectDirectory, SubjectInfo
from alerts.items import CheckinIn, DeviceEventIn, LocationFixIn, time_problem
from alerts.leave import LeaveBook, record_return
from alerts.models import CHECKINS, CheckinSource, DeviceEvent, LocationFix
from alerts.plans import PlanBook
from alerts.raising import AlarmRaiser, Fire
from alerts.rules_device import DeviceRules
from alerts.rules_location import LocationRules, Transition
from alerts.watcher import DeadlineWatcher, no_checkin_key
from alerts.writer import GroupWriter
from center.authz import Action, Principal, authorize
from center.bus import Bus
from center.clock import Clock
from center.errors import CenterError, NotFound, ValidationFailed
from center.jurisdictions import JurisdictionTree
from center.topics import Event, Topic

_LOGGER = logging.getLogger(__name__)
_MARK_ATTEMPTS = 3
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def _retryable(exc: DBAPIError) -> bool:
    """A PostgreSQL deadlock or serialization failure (asyncpg's ``sqlstate``), or SQLite's
    "database is locked"."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return state in _RETRYABLE_SQLSTATES or "locked" in str(orig)


DEVICE_EVENTS: Table = DeviceEvent.__table__  # type: ignore[assignment]
LOCATIONS: Table = LocationFix.__table__  # type: ignore[assignment]
T = TypeVar("T", CheckinIn, DeviceEventIn, LocationFixIn)
Result = dict[str, Any]


def _accepted(index: int, event_id: str, **extra: Any) -> Result:
    return {"index": index, "status": "accepted", "event_id": event_id, **extra}


def _row(item: msgspec.Struct, *, drop: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """An item's fields as a table row (the models name their fields as the columns do)."""
    row = msgspec.structs.asdict(item)
    for name in drop:
        del row[name]
    row.update(extra)
    return row


def _rejected(index: int, err: CenterError) -> Result:
    """The error stays an exception here; the HTTP edge formats it (or raises it, for a
    single item)."""
    return {"index": index, "status": "rejected", "error": err}


class Ingestor:
    def __init__(
        self,
        *,
        clock: Clock,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        tree: JurisdictionTree,
        directory: SubjectDirectory,
        plans: PlanBook,
        watcher: DeadlineWatcher,
        raiser: AlarmRaiser,
        leaves: LeaveBook,
        locations: LocationRules,
        devices: DeviceRules,
        writer: GroupWriter,
        in_city: Callable[[float, float], bool],
        checkin_retention: timedelta,
        location_retention: timedelta,
    ) -> None:
        self._clock = clock
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._tree = tree
        self._directory = directory
        self._plans = plans
        self._watcher = watcher
        self._raiser = raiser
        self._leaves = leaves
        self._locations = locations
        self._devices = devices
        self._writer = writer
        self._marks: list[tuple[str, str, str, datetime]] = []
        self._marks_batch: asyncio.Future[None] | None = None
        self._in_city = in_city
        self._checkin_retention = checkin_retention
        self._location_retention = location_retention
        self.accepted = {"checkins": 0, "device_events": 0, "locations": 0}

    # -- shared steps ---------------------------------------------------------------------------

    @staticmethod
    def _validate(
        items: Sequence[T | CenterError],
        now: datetime,
        oldest: datetime,
        results: list[Result | None],
    ) -> list[tuple[int, T]]:
        """Items that decoded and whose time fits the clock; the rest answered rejected."""
        valid: list[tuple[int, T]] = []
        for i, item in enumerate(items):
            if isinstance(item, CenterError):
                results[i] = _rejected(i, item)
                continue
            problem = time_problem(item.at, now, oldest)
            if problem is not None:
                results[i] = _rejected(
                    i,
                    ValidationFailed(
                        f"invalid item: at: {problem}",
                        details={"field": "at", "fields": {"at": problem}},
                    ),
                )
                continue
            valid.append((i, item))
        return valid

    async def _scope(
        self,
        principal: Principal,
        action: Action,
        valid: list[tuple[int, T]],
        results: list[Result | None],
    ) -> list[tuple[int, T, SubjectInfo]]:
        """Keep items whose subject exists and lies in the key's jurisdiction. Both failures
        get the same answer, so a key cannot probe for subjects outside its area."""
        d = self._directory
        if any(item.subject_id not in d.index for _, item in valid):
            async with self._sessionmaker() as session:
                await d.ensure(session, (item.subject_id for _, item in valid))
        out: list[tuple[int, T, SubjectInfo]] = []
        for i, item in valid:
            info = d.get(item.subject_id)
            if info is None or not authorize(principal, action, self._tree.path(info.street_id)):
                results[i] = _rejected(
                    i,
                    NotFound(
                        f"no subject {item.subject_id!r} in this key's jurisdiction",
                        details={"field": "subject_id"},
                    ),
                )
                continue
            out.append((i, item, info))
        return out

    async def _admit(
        self,
        principal: Principal,
        action: Action,
        items: Sequence[T | CenterError],
        retention: timedelta,
    ) -> tuple[
        datetime, list[Result | None], list[tuple[int, T, SubjectInfo]], list[tuple[int, str]]
    ]:
        """The steps every item type shares: validate against the clock, keep what is in the
        key's jurisdiction, and split repeats of an ``event_id`` within the batch."""
        now = self._clock.now()
        results: list[Result | None] = [None] * len(items)
        valid = self._validate(items, now, now - retention, results)
        scoped = await self._scope(principal, action, valid, results)
        firsts, repeats = self._split_in_batch(scoped)
        return now, results, firsts, repeats

    @staticmethod
    def _answer(
        results: list[Result | None],
        firsts: list[tuple[int, T, SubjectInfo]],
        repeats: list[tuple[int, str]],
        inserted: set[str],
    ) -> list[tuple[T, SubjectInfo]]:
        """Answer accepted or duplicate; returns the newly stored items for the rules."""
        new: list[tuple[T, SubjectInfo]] = []
        for i, item, info in firsts:
            if item.event_id in inserted:
                new.append((item, info))
                results[i] = _accepted(i, item.event_id)
            else:
                results[i] = {"index": i, "status": "duplicate", "event_id": item.event_id}
        for i, eid in repeats:
            results[i] = {"index": i, "status": "duplicate", "event_id": eid}
        return new

    @staticmethod
    def _split_in_batch(
        scoped: list[tuple[int, T, SubjectInfo]],
    ) -> tuple[list[tuple[int, T, SubjectInfo]], list[tuple[int, str]]]:
        firsts: list[tuple[int, T, SubjectInfo]] = []
        repeats: list[tuple[int, str]] = []
        seen: set[str] = set()
        for entry in scoped:
            eid = entry[1].event_id
            if eid in seen:
                repeats.append((entry[0], eid))
            else:
                seen.add(eid)
                firsts.append(entry)
        return firsts, repeats

    def _fires(
        self, info: SubjectInfo, transitions: Sequence[Transition]
    ) -> tuple[list[Fire], list[tuple[str, SubjectInfo, Transition]]]:
        fires, clears = [], []
        for t in transitions:
            if t.active:
                fires.append(
                    Fire(str(t.kind), info, datetime.fromtimestamp(t.at, UTC), dict(t.details))
                )
            else:
                clears.append((str(t.kind), info, t))
        return fires, clears

    async def _apply(
        self,
        fires: list[Fire],
        clears: list[tuple[str, SubjectInfo, Transition]],
        now: datetime,
    ) -> None:
        if fires:
            await self._raiser.fire(fires, now)
        for kind, info, t in clears:
            await self._raiser.add_event(
                kind, info.id, "cleared", datetime.fromtimestamp(t.at, UTC), dict(t.details)
            )

    # -- check-ins ------------------------------------------------------------------------------

    def _is_return(self, c: CheckinIn) -> bool:
        """A check-in that proves the subject is back in the city."""
        if c.lat is not None and c.lon is not None:
            return self._in_city(c.lon, c.lat)
        return c.source in (CheckinSource.TERMINAL, CheckinSource.OFFICER)

    async def checkins(
        self, principal: Principal, items: Sequence[CheckinIn | CenterError]
    ) -> list[Result]:
        now, results, firsts, repeats = await self._admit(
            principal, Action.CHECKINS_INGEST, items, self._checkin_retention
        )
        lateness = self._plans.lateness_s
        plans = self._plans.plans
        d = self._directory
        rows: list[dict[str, Any]] = []
        meta: dict[str, tuple[int, CheckinIn, SubjectInfo, Any, bool, bool]] = {}
        returns: list[CheckinIn] = []
        for i, c, info in firsts:
            at_ts = c.at.timestamp()
            w, late = plans[d.plan[info.index]].window_for(at_ts, lateness)
            on_leave = self._leaves.on_leave(c.subject_id, at_ts)
            rows.append(
                {
                    "event_id": c.event_id,
                    "subject_id": c.subject_id,
                    "at": c.at,
                    "source": c.source,
                    "lat": c.lat,
                    "lon": c.lon,
                    "accuracy_m": c.accuracy_m,
                    "face_verified": c.face_verified,
                    "window_start": w.start_dt if w is not None else None,
                    "late": late,
                    "on_leave": on_leave,
                    "received_at": now,
                    "credential_id": principal.id[:32],
                }
            )
            meta[c.event_id] = (i, c, info, w, late, on_leave)
        inserted, stored = await self._writer.write(CHECKINS, rows, ("window_start", "late"))
        for eid in inserted:
            c = meta[eid][1]
            if self._leaves.started(c.subject_id, c.at.timestamp()) and self._is_return(c):
                returns.append(c)
        if returns:
            async with self._sessionmaker() as session:
                for c in returns:
                    await record_return(session, self._leaves, c.subject_id, c.at, c.event_id)
                await session.commit()
        for c in returns:
            # Closed leaves no longer excuse a location outside the city.
            for leave in self._leaves.started(c.subject_id, c.at.timestamp()):
                self._leaves.remove(c.subject_id, leave.id)
        marks = []
        events: list[dict[str, Any]] = []
        for eid in inserted:
            i, c, info, w, late, on_leave = meta[eid]
            window_start = w.start_dt.isoformat() if w is not None else None
            if w is not None:
                if not late:
                    self._watcher.note_checkin(info.index, w.start)
                if late or now.timestamp() >= w.deadline:
                    marks.append((no_checkin_key(c.subject_id, w.start), eid, info.level, c.at))
            results[i] = _accepted(i, eid, window_start=window_start, late=late)
            events.append(
                {
                    "event_id": eid,
                    "subject_id": c.subject_id,
                    "street_id": info.street_id,
                    "district_id": info.district_id,
                    "at": c.at.isoformat(),
                    "source": c.source,
                    "late": late,
                    "window_start": window_start,
                    "on_leave": on_leave,
                }
            )
        for eid, entry in meta.items():
            if eid not in inserted:
                results[entry[0]] = self._duplicate(entry[0], eid, stored)
        for i, eid in repeats:
            first = results[meta[eid][0]] if eid in inserted else None
            results[i] = (
                {**first, "index": i, "status": "duplicate"}
                if first is not None
                else self._duplicate(i, eid, stored)
            )
        if marks:
            await self._mark_late(marks, now)
        self.accepted["checkins"] += len(inserted)
        await self._bus.notify_many(Topic.CHECKINS, Event.CHECKIN_RECORDED, events)
        return [r for r in results if r is not None]

    async def _mark_late(self, marks: list[tuple[str, str, str, datetime]], now: datetime) -> None:
        """Attach late check-ins to their alarms, coalescing concurrent requests into one
        writer job (after 20:10 every check-in of the day's window is late, and most have
        no alarm to mark)."""
        self._marks.extend(marks)
        batch = self._marks_batch
        if batch is not None:
            await asyncio.shield(batch)
            return
        batch = self._marks_batch = asyncio.get_running_loop().create_future()

        taken: list[tuple[str, str, str, datetime]] = []

        async def job(session: AsyncSession) -> list[dict[str, Any]]:
            nonlocal taken
            taken, self._marks = self._marks, []
            self._marks_batch = None
            return await self._raiser.mark_late(session, taken, now)

        changed: list[dict[str, Any]] = []
        try:
            for attempt in range(1, _MARK_ATTEMPTS + 1):
                try:
                    changed = await self._writer.run_job(job)
                    break
                except DBAPIError as exc:
                    # The check-ins are committed already: never answer them with a 500.
                    # A deadlock or serialization failure is retried; if it persists, the
                    # maintenance round's reconciliation marks the alarms.
                    if not _retryable(exc) or attempt == _MARK_ATTEMPTS:
                        _LOGGER.warning(
                            "marking %d late check-ins failed (%s); reconciliation will",
                            len(taken),
                            exc.orig,
                        )
                        break
                    self._marks.extend(taken)
                    await asyncio.sleep(0.05 * attempt)
        except BaseException as exc:
            batch.set_exception(exc)
            batch.exception()  # retrieved: waiters re-raise it themselves
            raise
        batch.set_result(None)
        await self._raiser.publish([(Event.ALARM_UPDATED, r) for r in changed])

    @staticmethod
    def _duplicate(i: int, eid: str, stored: dict[str, dict[str, Any]]) -> Result:
        row = stored.get(eid, {})
        out: Result = {"index": i, "status": "duplicate", "event_id": eid}
        if "window_start" in row:
            ws = row["window_start"]
            out["window_start"] = ws.isoformat() if ws is not None else None
            out["late"] = bool(row["late"])
        return out

    # -- device events --------------------------------------------------------------------------

    async def device_events(
        self, principal: Principal, items: Sequence[DeviceEventIn | CenterError]
    ) -> list[Result]:
        now, results, firsts, repeats = await self._admit(
            principal, Action.DEVICE_EVENTS_INGEST, items, self._checkin_retention
        )
        # battery_pct is read by the rules, not stored
        cred = principal.id[:32]
        rows = [
            _row(e, received_at=now, credential_id=cred, drop=("battery_pct",))
            for _, e, _ in firsts
        ]
        inserted, _ = await self._writer.write(DEVICE_EVENTS, rows)
        fires: list[Fire] = []
        clears: list[tuple[str, SubjectInfo, Transition]] = []
        for e, info in self._answer(results, firsts, repeats, inserted):
            f, c = self._fires(info, self._devices.observe(e))
            fires.extend(f)
            clears.extend(c)
        await self._apply(fires, clears, now)
        self.accepted["device_events"] += len(inserted)
        return [r for r in results if r is not None]

    # -- location fixes -------------------------------------------------------------------------

    async def locations(
        self, principal: Principal, items: Sequence[LocationFixIn | CenterError]
    ) -> list[Result]:
        now, results, firsts, repeats = await self._admit(
            principal, Action.LOCATIONS_INGEST, items, self._location_retention
        )
        cred = principal.id[:32]
        rows = [
            _row(f, received_at=now, in_city=self._in_city(f.lon, f.lat), credential_id=cred)
            for _, f, _ in firsts
        ]
        inserted, _ = await self._writer.write(LOCATIONS, rows)
        per_subject: dict[str, tuple[SubjectInfo, list[LocationFixIn]]] = {}
        fires: list[Fire] = []
        clears: list[tuple[str, SubjectInfo, Transition]] = []
        for f, info in self._answer(results, firsts, repeats, inserted):
            per_subject.setdefault(f.subject_id, (info, []))[1].append(f)
            back = self._devices.heard(f.subject_id, f.device_id, f.at.timestamp())
            if back is not None:
                clears.append((str(back.kind), info, back))
        for sid, (info, fixes) in per_subject.items():
            f2, c2 = self._fires(info, self._locations.observe(sid, fixes))
            fires.extend(f2)
            clears.extend(c2)
        await self._apply(fires, clears, now)
        self.accepted["locations"] += len(inserted)
        return [r for r in results if r is not None]
