"""The random campaign (随机抽查): each day a share of subjects, drawn by risk, assigned to
their street office at a random time inside the office's daily periods.

The draw is a pure function (:func:`draw`) over a random source the caller passes in, so a
seeded source (``spotcheck_campaign_seed``) makes a day's draw reproducible and testable:

* ``round(share × active subjects)`` are drawn, without replacement, each with probability
  proportional to its weight: its level's (``spotcheck_campaign_weights``) plus
  ``spotcheck_campaign_alarm_weight`` per alarm in the last ``spotcheck_campaign_alarm_days``
  (Efraimidis–Spirakis keys ``u^(1/w)``, one pass);
* nobody drawn yesterday is drawn again today unless strict (严管);
* each drawn subject is due at a uniformly random minute of its office's periods
  (``spotcheck_campaign_periods``: city-wide periods, then per-office ones).

The day's draw runs on a durable timer at local midnight (and at start for today), so it
runs once across restarts and instances; ``(day, subject)`` is unique besides. Progress is
read, not stored: an assignment is done once the subject has a spot-check that day that
ended ``passed``, ``failed`` or ``unreachable``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.models import Alarm
from alerts.raising import dialect_insert
from alerts.spotcheck_models import SpotCheck, SpotCheckAssignment, SpotCheckState
from center.authz import Action, Principal
from center.clock import Clock
from center.jurisdictions import JurisdictionTree
from center.models import Subject, SupervisionLevel
from center.scope import ScopeColumns, within
from center.timers import AfterCommit, FiredTimer, TimerService

_LOGGER = logging.getLogger(__name__)

KIND: Final = "spotcheck.campaign"
DONE_STATES: Final = frozenset(
    {SpotCheckState.PASSED, SpotCheckState.FAILED, SpotCheckState.UNREACHABLE}
)
_SCOPE = ScopeColumns(
    district=SpotCheckAssignment.district_id, street=SpotCheckAssignment.street_id
)
Period = tuple[int, int]  # minutes after local midnight, [start, end)


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    level: str
    street_id: str
    district_id: str
    alarms: int = 0


@dataclass(frozen=True, slots=True)
class CampaignPolicy:
    share: float
    weights: dict[str, float]
    alarm_weight: float
    alarm_days: int
    periods: tuple[Period, ...]
    office_periods: dict[str, tuple[Period, ...]]
    seed: str

    @classmethod
    def parse(
        cls,
        *,
        share: float,
        weights: str,
        alarm_weight: float,
        alarm_days: int,
        periods: str,
        seed: str,
    ) -> CampaignPolicy:
        table: dict[str, float] = {}
        for part in (p.strip() for p in weights.split(",")):
            if not part:
                continue
            level, _, value = part.partition("=")
            if level.strip() not in set(SupervisionLevel) or float(value) < 0:
                raise ValueError(f"spotcheck_campaign_weights: bad entry {part!r}")
            table[level.strip()] = float(value)
        default, *offices = periods.split(";")
        office_periods: dict[str, tuple[Period, ...]] = {}
        for entry in offices:
            if entry.strip():
                office, _, spec = entry.partition("=")
                office_periods[office.strip()] = _periods(spec)
        return cls(share, table, alarm_weight, alarm_days, _periods(default), office_periods, seed)

    def rng(self, day: date) -> random.Random:
        return (
            random.Random(f"{self.seed}:{day.isoformat()}") if self.seed else random.SystemRandom()
        )

    def periods_of(self, street_id: str) -> tuple[Period, ...]:
        return self.office_periods.get(street_id, self.periods)

    def weight(self, c: Candidate) -> float:
        return self.weights.get(c.level, 1.0) + self.alarm_weight * c.alarms


def _periods(spec: str) -> tuple[Period, ...]:
    out: list[Period] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        start, _, end = part.partition("-")
        a, b = _minute(start), _minute(end)
        if b <= a:
            raise ValueError(f"spotcheck_campaign_periods: {part!r} ends before it starts")
        out.append((a, b))
    if not out:
        raise ValueError("spotcheck_campaign_periods: at least one period")
    return tuple(out)


def _minute(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    h, m = int(hours), int(minutes or 0)
    if not (0 <= h <= 24 and 0 <= m < 60 and h * 60 + m <= 24 * 60):
        raise ValueError(f"spotcheck_campaign_periods: bad time {text!r}")
    return h * 60 + m


def draw(
    candidates: Sequence[Candidate],
    policy: CampaignPolicy,
    *,
    yesterday: frozenset[str],
    rng: random.Random,
) -> list[tuple[Candidate, float]]:
    """The day's subjects and their weights (see the module docstring)."""
    k = round(policy.share * len(candidates))
    keyed: list[tuple[float, Candidate, float]] = []
    for c in candidates:
        if c.id in yesterday and c.level != SupervisionLevel.STRICT:
            continue
        w = policy.weight(c)
        if w <= 0:
            continue
        keyed.append((rng.random() ** (1.0 / w), c, w))
    keyed.sort(key=lambda item: item[0], reverse=True)
    return [(c, w) for _, c, w in keyed[:k]]


def due_at(day: date, periods: Sequence[Period], tz: ZoneInfo, rng: random.Random) -> datetime:
    """A uniformly random minute inside the periods (longer periods get more of them)."""
    total = sum(b - a for a, b in periods)
    pick = rng.randrange(total)
    for a, b in periods:
        if pick < b - a:
            minute = a + pick
            break
        pick -= b - a
    midnight = datetime.combine(day, time(0), tz)
    return midnight + timedelta(minutes=minute)


class AssignmentOut(msgspec.Struct):
    subject_id: str
    subject_name: str
    level: str
    due_at: datetime
    spotcheck_id: int | None
    state: str | None
    done: bool


class OfficeOut(msgspec.Struct):
    street_id: str
    street_name: str
    district_id: str
    due: int
    done: int
    items: list[AssignmentOut]


class CampaignOut(msgspec.Struct):
    date: date
    due: int
    done: int
    offices: list[OfficeOut]


class SpotCheckCampaign:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        timers: TimerService,
        tree: JurisdictionTree,
        policy: CampaignPolicy,
        tz: ZoneInfo,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._timers = timers
        self._tree = tree
        self.policy = policy
        self._tz = tz
        self.drawn = 0
        timers.register(KIND, self._on_due)

    def __repr__(self) -> str:
        return f"<SpotCheckCampaign share={self.policy.share} drawn={self.drawn}>"

    def today(self) -> date:
        return self._clock.now().astimezone(self._tz).date()

    async def start(self) -> None:
        """Make sure today's draw is scheduled (a no-op when it already ran)."""
        if self.policy.share <= 0:
            return
        async with self._sessionmaker() as session:
            await self._schedule(session, self.today(), self._clock.now())
            await session.commit()

    async def _schedule(self, session: AsyncSession, day: date, at: datetime) -> None:
        await self._timers.schedule(
            session,
            kind=KIND,
            key=f"spotcheck:campaign:{day.isoformat()}",
            due_at=at,
            payload={"day": day.isoformat()},
        )

    async def _on_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        day = date.fromisoformat(str(timer.payload["day"]))
        await self.run_draw(session, day)
        tomorrow = day + timedelta(days=1)
        await self._schedule(session, tomorrow, datetime.combine(tomorrow, time(0), self._tz))
        return None

    async def run_draw(self, session: AsyncSession, day: date) -> int:
        """Draw ``day`` into the assignments table (the caller commits); returns how many."""
        since = datetime.combine(day, time(0), self._tz) - timedelta(days=self.policy.alarm_days)
        counted = await session.execute(
            select(Alarm.subject_id, func.count())
            .where(Alarm.created_at >= since)
            .group_by(Alarm.subject_id)
        )
        alarms: dict[str, int] = {str(sid): int(n) for sid, n in counted.all()}
        subjects = (
            await session.execute(
                select(Subject.id, Subject.level, Subject.street_id, Subject.district_id).where(
                    Subject.active.is_(True)
                )
            )
        ).all()
        candidates = [
            Candidate(sid, level, street, district, int(alarms.get(sid, 0)))
            for sid, level, street, district in subjects
        ]
        yesterday = frozenset(
            (
                await session.scalars(
                    select(SpotCheckAssignment.subject_id).where(
                        SpotCheckAssignment.day == (day - timedelta(days=1)).isoformat()
                    )
                )
            ).all()
        )
        rng = self.policy.rng(day)
        picked = draw(candidates, self.policy, yesterday=yesterday, rng=rng)
        now = self._clock.now()
        rows = [
            {
                "day": day.isoformat(),
                "subject_id": c.id,
                "level": c.level,
                "street_id": c.street_id,
                "district_id": c.district_id,
                "due_at": due_at(day, self.policy.periods_of(c.street_id), self._tz, rng),
                "weight": w,
                "created_at": now,
            }
            for c, w in picked
        ]
        table: Any = SpotCheckAssignment.__table__
        for i in range(0, len(rows), 1000):
            await session.execute(
                dialect_insert(session, table).on_conflict_do_nothing(
                    index_elements=["day", "subject_id"]
                ),
                rows[i : i + 1000],
            )
        self.drawn += len(rows)
        _LOGGER.info(
            "spot-check campaign %s: %d of %d subjects drawn", day, len(rows), len(candidates)
        )
        return len(rows)

    async def progress(
        self, principal: Principal, day: date, *, street: str | None = None
    ) -> CampaignOut:
        """Each office's due list for ``day`` in the caller's jurisdiction, with progress."""
        conds = within(principal, self._tree, Action.SPOTCHECKS_READ, _SCOPE, street=street)
        start = datetime.combine(day, time(0), self._tz)
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(SpotCheckAssignment, Subject.name)
                    .join(Subject, Subject.id == SpotCheckAssignment.subject_id)
                    .where(SpotCheckAssignment.day == day.isoformat(), *conds)
                    .order_by(SpotCheckAssignment.street_id, SpotCheckAssignment.due_at)
                )
            ).all()
            ids = [a.subject_id for a, _ in rows]
            latest: dict[str, tuple[int, str]] = {}
            for i in range(0, len(ids), 1000):
                for sc_id, subject_id, state in (
                    await session.execute(
                        select(SpotCheck.id, SpotCheck.subject_id, SpotCheck.state)
                        .where(
                            SpotCheck.subject_id.in_(ids[i : i + 1000]),
                            SpotCheck.created_at >= start,
                            SpotCheck.created_at < start + timedelta(days=1),
                        )
                        .order_by(SpotCheck.id)
                    )
                ).all():
                    latest[subject_id] = (sc_id, state)
        offices: dict[str, OfficeOut] = {}
        for a, name in rows:
            sc_id, state = latest.get(a.subject_id, (None, None))
            done = state in DONE_STATES
            node = self._tree.get(a.street_id)
            office = offices.setdefault(
                a.street_id,
                OfficeOut(a.street_id, node.name if node else "", a.district_id, 0, 0, []),
            )
            office.items.append(
                AssignmentOut(a.subject_id, name, a.level, a.due_at, sc_id, state, done)
            )
            office.due += 1
            office.done += int(done)
        out = list(offices.values())
        return CampaignOut(day, sum(o.due for o in out), sum(o.done for o in out), out)
