"""The booking rules as pure functions: lead time in working days, the join window, and the
refusal that tells the family what to change.

Working days are Monday to Friday in the center's time zone, less the public holidays
(``visit_holidays``) and plus the make-up working weekends (调休, ``visit_working_weekends``)
the operator lists: China's holiday calendar is published each year, not computable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class VisitRules:
    """The rules per prison; today every prison uses the settings' values."""

    minutes: int
    max_relatives: int
    monthly_quota: int
    lead_working_days: int
    no_show_minutes: int
    rejoin_grace_s: float
    require_monitor: bool
    join_early_minutes: int
    tz: ZoneInfo
    holidays: frozenset[date] = frozenset()
    working_weekends: frozenset[date] = frozenset()


def is_working_day(
    day: date,
    holidays: frozenset[date] = frozenset(),
    working_weekends: frozenset[date] = frozenset(),
) -> bool:
    """Monday to Friday unless a holiday; a listed make-up weekend day works."""
    if day in working_weekends:
        return True
    return day.weekday() < 5 and day not in holidays


def add_working_days(
    day: date,
    n: int,
    holidays: frozenset[date] = frozenset(),
    working_weekends: frozenset[date] = frozenset(),
) -> date:
    """The ``n``-th working day after ``day`` (``day`` itself never counts)."""
    out = day
    while n > 0:
        out += timedelta(days=1)
        if is_working_day(out, holidays, working_weekends):
            n -= 1
    return out


def earliest_day(now: datetime, rules: VisitRules) -> date:
    """The first local day an ordinary visit may be booked for, booking at ``now``."""
    return add_working_days(
        now.astimezone(rules.tz).date(),
        rules.lead_working_days,
        rules.holidays,
        rules.working_weekends,
    )


def month_of(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m")


def join_window(
    starts_at: datetime, ends_at: datetime, rules: VisitRules
) -> tuple[datetime, datetime]:
    """When a join code works: from shortly before the slot until its end."""
    return starts_at - timedelta(minutes=rules.join_early_minutes), ends_at


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end
