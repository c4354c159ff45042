"""Aggregates for the live dashboard: today's check-ins per district and open alarm counts.

Public helpers with stable signatures (the live layer calls them when it rebuilds state):

* :func:`checkin_stats_today` — per district ``{"expected", "done", "missed"}`` for the
  windows that opened today (local date) up to ``now``;
* :func:`open_alarm_counts` — open, raised (not suppressed) alarms by district, street,
  kind and severity.

``expected`` comes from the plans and the subject counts, ``done`` from on-time check-ins,
``missed`` from the ``no_checkin``/``late_checkin`` alarms of today's windows, so the three
agree with what the watcher did even across restarts and instances.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import OPEN_STATES, Alarm, AlarmKind, Checkin, SubjectPlan
from alerts.plans import PlanBook
from center.jurisdictions import JurisdictionTree
from center.models import Subject

_active: PlanBook | None = None


def set_active_plans(book: PlanBook) -> None:
    """The running engine registers its plans so callers need not pass them."""
    global _active
    _active = book


def _default_plans() -> PlanBook:
    if _active is not None:
        return _active
    from alerts.plans import plan_settings
    from config.settings import Settings

    return PlanBook(plan_settings(Settings()))


async def checkin_stats_today(
    session: AsyncSession,
    tree: JurisdictionTree,
    tz: ZoneInfo,
    now: datetime,
    *,
    plans: PlanBook | None = None,
) -> dict[str, dict[str, int]]:
    """district id → ``{"expected", "done", "missed"}`` for today's windows so far.

    Every district of ``tree`` is present (zeros when it has no subjects), so a wall screen
    shows an honest zero rather than a missing tile.
    """
    book = plans or _default_plans()
    local = now.astimezone(tz)
    day_start = datetime.combine(local.date(), time(0), tzinfo=tz)
    day_end = day_start + timedelta(days=1)
    start_ts, until_ts = day_start.timestamp(), min(now, day_end).timestamp()
    out: dict[str, dict[str, int]] = {
        n.id: {"expected": 0, "done": 0, "missed": 0} for n in tree.by_level("district")
    }

    def windows(plan_id: str) -> int:
        idx = book.index(plan_id)
        if idx is None:
            idx = book.index("normal") or 0
        opened = book.plans[idx].windows_starting(start_ts, until_ts + 1e-6)
        return len(opened)

    per_plan: dict[str, int] = {}
    counts = (
        await session.execute(
            select(Subject.district_id, Subject.level, func.count())
            .where(Subject.active.is_(True))
            .group_by(Subject.district_id, Subject.level)
        )
    ).all()
    for district, level, n in counts:
        if level not in per_plan:
            per_plan[level] = windows(level)
        out.setdefault(district, {"expected": 0, "done": 0, "missed": 0})
        out[district]["expected"] += int(n) * per_plan[level]
    overrides = (
        await session.execute(
            select(Subject.district_id, Subject.level, SubjectPlan.plan_id, func.count())
            .join(SubjectPlan, SubjectPlan.subject_id == Subject.id)
            .where(Subject.active.is_(True))
            .group_by(Subject.district_id, Subject.level, SubjectPlan.plan_id)
        )
    ).all()
    for district, level, plan_id, n in overrides:
        for key in (level, plan_id):
            if key not in per_plan:
                per_plan[key] = windows(key)
        out[district]["expected"] += int(n) * (per_plan[plan_id] - per_plan[level])
    done_rows = (
        select(Checkin.subject_id, Checkin.window_start)
        .where(
            Checkin.window_start >= day_start,
            Checkin.window_start < day_end,
            Checkin.late.is_(False),
        )
        .distinct()
        .subquery()
    )
    for district, n in (
        await session.execute(
            select(Subject.district_id, func.count())
            .select_from(done_rows)
            .join(Subject, Subject.id == done_rows.c.subject_id)
            .group_by(Subject.district_id)
        )
    ).all():
        out.setdefault(district, {"expected": 0, "done": 0, "missed": 0})["done"] = int(n)
    for district, n in (
        await session.execute(
            select(Alarm.district_id, func.count())
            .where(
                Alarm.kind.in_([AlarmKind.NO_CHECKIN, AlarmKind.LATE_CHECKIN]),
                Alarm.window_start >= day_start,
                Alarm.window_start < day_end,
            )
            .group_by(Alarm.district_id)
        )
    ).all():
        out.setdefault(district, {"expected": 0, "done": 0, "missed": 0})["missed"] = int(n)
    return out


async def open_alarm_counts(session: AsyncSession) -> list[dict[str, Any]]:
    """``[{"district_id", "street_id", "kind", "severity", "count"}]`` of open alarms
    (states before resolved/closed; suppressed ones excluded)."""
    rows = (
        await session.execute(
            select(Alarm.district_id, Alarm.street_id, Alarm.kind, Alarm.severity, func.count())
            .where(Alarm.state.in_(sorted(OPEN_STATES)), Alarm.suppressed.is_(False))
            .group_by(Alarm.district_id, Alarm.street_id, Alarm.kind, Alarm.severity)
        )
    ).all()
    return [
        {"district_id": d, "street_id": s, "kind": k, "severity": sev, "count": int(n)}
        for d, s, k, sev, n in rows
    ]
