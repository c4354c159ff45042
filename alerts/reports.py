"""Daily and date-range reports: alarms by kind, acknowledgement and disposal times, the
24-hour closed-loop rate and the check-in completion rate, per district and for the city.

Definitions (the printable page states them too, so a reader can recompute any figure):

* an alarm belongs to the day (local time, ``timezone`` setting) it was raised
  (``created_at``); suppressed alarms are not counted;
* acknowledgement time = ``acknowledged_at − created_at``; disposal time = ``resolved_at −
  created_at``; only alarms that reached the step count. Median: the middle value (mean of
  the two middle ones for an even count); 90th percentile: nearest rank (the
  ⌈0.9·n⌉-th smallest value);
* closed-loop rate = alarms resolved within ``loop_hours`` of being raised / alarms raised;
* states (as the console queue and the live dashboard count them, :mod:`center.alarm_vocab`):
  ``open`` = the closed loop still runs (new, acknowledged, dispatched, verifying, reopened);
  ``awaiting_close`` = disposed (``resolved``) and waiting for the owner's close; ``closed``;
* spot-checks (``spotchecks``): those started in the period by how they ended (``done`` =
  passed + failed + unreachable) and the median seconds from the first ring to the answer;
* check-in completion = windows satisfied on time / windows due, where a window is due when
  it was satisfied (a check-in that is not late) or missed (a ``no_checkin`` alarm), both by
  the window's start.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import ALARMS, AlarmKind, Checkin
from alerts.spotcheck_models import SpotCheck
from center.alarm_vocab import AWAITING_CLOSE, OPEN_STATES, AlarmState
from center.authz import Action, Principal
from center.errors import NotFound
from center.jurisdictions import JurisdictionTree
from center.models import Subject
from center.scope import ScopeColumns, within


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return float(s[max(0, math.ceil(0.9 * len(s)) - 1)])


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


@dataclass(slots=True)
class Figures:
    """One scope's figures; ``add`` one alarm at a time."""

    alarms: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    ack_s: list[float] = field(default_factory=list)
    disposal_s: list[float] = field(default_factory=list)
    closed_in_loop: int = 0
    loop_breached: int = 0
    checkins_done: int = 0
    checkins_missed: int = 0
    states: Counter[str] = field(default_factory=Counter)

    def add(self, row: Any, loop: timedelta) -> None:
        self.alarms += 1
        if row.state in OPEN_STATES:
            self.states["open"] += 1
        elif row.state in AWAITING_CLOSE:
            self.states["awaiting_close"] += 1
        elif row.state == AlarmState.CLOSED:
            self.states["closed"] += 1
        self.by_kind[row.kind] += 1
        if row.acknowledged_at is not None:
            self.ack_s.append((row.acknowledged_at - row.created_at).total_seconds())
        if row.resolved_at is not None:
            took = row.resolved_at - row.created_at
            self.disposal_s.append(took.total_seconds())
            if took <= loop:
                self.closed_in_loop += 1
        if row.loop_breached:
            self.loop_breached += 1

    def as_json(self) -> dict[str, Any]:
        due = self.checkins_done + self.checkins_missed
        return {
            "alarms": self.alarms,
            "by_kind": {k: self.by_kind.get(k, 0) for k in map(str, AlarmKind)},
            "ack": {
                "count": len(self.ack_s),
                "median_s": median(self.ack_s),
                "p90_s": p90(self.ack_s),
            },
            "disposal": {
                "count": len(self.disposal_s),
                "median_s": median(self.disposal_s),
                "p90_s": p90(self.disposal_s),
            },
            "closed_loop": {
                "within_loop": self.closed_in_loop,
                "rate": _rate(self.closed_in_loop, self.alarms),
            },
            "loop_breached": self.loop_breached,
            "states": {k: self.states.get(k, 0) for k in ("open", "awaiting_close", "closed")},
            "checkins": {
                "due": due,
                "done": self.checkins_done,
                "rate": _rate(self.checkins_done, due),
            },
        }


@dataclass(frozen=True, slots=True)
class Scope:
    id: str
    name: str
    level: str


def report_scope(
    principal: Principal, tree: JurisdictionTree, district: str | None, street: str | None
) -> Scope:
    """The node a report covers: the requested street or district (404 outside the caller's
    subtree, :func:`center.scope.within`), else the caller's own jurisdiction."""
    within(
        principal,
        tree,
        Action.REPORTS_READ,
        ScopeColumns(ALARMS.c.district_id, ALARMS.c.street_id),
        district=district,
        street=street,
    )
    node_id = street or district or (principal.jurisdiction[-1] if principal.jurisdiction else "")
    node = tree.get(node_id)
    if node is None:
        raise NotFound("no such jurisdiction in your scope")
    return Scope(node.id, node.name, node.level)


def day_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of ``first``, start of the day after ``last``) in local time, as aware UTC."""
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    return start, end


async def build_report(
    session: AsyncSession,
    tree: JurisdictionTree,
    scope: Scope,
    first: date,
    last: date,
    tz: ZoneInfo,
    loop: timedelta,
) -> dict[str, Any]:
    start, end = day_bounds(first, last, tz)
    conds: list[Any] = [
        ALARMS.c.created_at >= start,
        ALARMS.c.created_at < end,
        ALARMS.c.suppressed.is_(False),
    ]
    if scope.level == "district":
        conds.append(ALARMS.c.district_id == scope.id)
    elif scope.level == "street":
        conds.append(ALARMS.c.street_id == scope.id)
    rows = (
        await session.execute(
            select(
                ALARMS.c.kind,
                ALARMS.c.district_id,
                ALARMS.c.created_at,
                ALARMS.c.acknowledged_at,
                ALARMS.c.resolved_at,
                ALARMS.c.loop_breached,
                ALARMS.c.state,
            ).where(*conds)
        )
    ).all()
    total = Figures()
    per: dict[str, Figures] = {}
    for row in rows:
        total.add(row, loop)
        per.setdefault(row.district_id, Figures()).add(row, loop)
    # Check-in windows: satisfied (on-time check-in) and missed (no_checkin alarm).
    subj_conds: list[Any] = []
    if scope.level == "district":
        subj_conds.append(Subject.district_id == scope.id)
    elif scope.level == "street":
        subj_conds.append(Subject.street_id == scope.id)
    windows = (
        select(Checkin.subject_id, Checkin.window_start)
        .where(
            Checkin.window_start >= start,
            Checkin.window_start < end,
            Checkin.late.is_(False),
        )
        .distinct()
        .subquery()
    )
    done_rows = (
        await session.execute(
            select(Subject.district_id, func.count())
            .select_from(windows)
            .join(Subject, Subject.id == windows.c.subject_id)
            .where(*subj_conds)
            .group_by(Subject.district_id)
        )
    ).all()
    for district_id, n in done_rows:
        total.checkins_done += int(n)
        per.setdefault(district_id, Figures()).checkins_done += int(n)
    missed_rows = (
        await session.execute(
            select(ALARMS.c.district_id, func.count())
            .where(
                ALARMS.c.kind == str(AlarmKind.NO_CHECKIN),
                ALARMS.c.window_start >= start,
                ALARMS.c.window_start < end,
                ALARMS.c.suppressed.is_(False),
                *(
                    [ALARMS.c.district_id == scope.id]
                    if scope.level == "district"
                    else [ALARMS.c.street_id == scope.id]
                    if scope.level == "street"
                    else []
                ),
            )
            .group_by(ALARMS.c.district_id)
        )
    ).all()
    for district_id, n in missed_rows:
        total.checkins_missed += int(n)
        per.setdefault(district_id, Figures()).checkins_missed += int(n)
    districts: Iterable[str]
    if scope.level == "city":
        districts = [n.id for n in tree.by_level("district")]
    elif scope.level == "district":
        districts = [scope.id]
    else:
        districts = []
    by_district = []
    for did in districts:
        node = tree.get(did)
        by_district.append(
            {"id": did, "name": node.name if node else did, **per.get(did, Figures()).as_json()}
        )
    return {
        "spotchecks": await spotcheck_figures(session, scope, start, end),
        "scope": {"id": scope.id, "name": scope.name, "level": scope.level},
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": str(tz),
        "loop_hours": loop.total_seconds() / 3600,
        "totals": total.as_json(),
        "by_district": by_district,
    }


async def spotcheck_figures(
    session: AsyncSession, scope: Scope, start: datetime, end: datetime
) -> dict[str, Any]:
    """Spot-checks started in the period: how they ended, and the median seconds from the
    first ring to the answer (answered ones only; a retry ladder's pauses count)."""
    conds: list[Any] = [SpotCheck.created_at >= start, SpotCheck.created_at < end]
    if scope.level == "district":
        conds.append(SpotCheck.district_id == scope.id)
    elif scope.level == "street":
        conds.append(SpotCheck.street_id == scope.id)
    rows = (
        await session.execute(
            select(SpotCheck.state, SpotCheck.created_at, SpotCheck.answered_at).where(*conds)
        )
    ).all()
    states = Counter(str(r.state) for r in rows)
    waits = [(r.answered_at - r.created_at).total_seconds() for r in rows if r.answered_at]
    ended = ("passed", "failed", "unreachable")
    return {
        "started": len(rows),
        "done": sum(states[s] for s in ended),
        **{s: states[s] for s in (*ended, "cancelled")},
        "answer_median_s": median(waits),
    }


CSV_COLUMNS = (
    ["from", "to", "scope_id", "scope_name", "alarms"]
    + [f"kind_{k}" for k in map(str, AlarmKind)]
    + [
        "ack_count",
        "ack_median_min",
        "ack_p90_min",
        "disposal_count",
        "disposal_median_min",
        "disposal_p90_min",
        "closed_within_loop",
        "closed_loop_rate",
        "loop_breached",
        "checkins_due",
        "checkins_done",
        "checkin_rate",
    ]
)


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def report_csv(report: dict[str, Any], header: list[str] | None = None) -> str:
    """One row for the scope, then one per district (UTF-8 with BOM for spreadsheet apps).

    ``header`` replaces the machine header row (:data:`CSV_COLUMNS`, stable for scripts) with
    labels for people, one per column in the same order."""
    if header is not None and len(header) != len(CSV_COLUMNS):
        raise ValueError(f"a CSV header needs {len(CSV_COLUMNS)} labels, got {len(header)}")
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS if header is None else header)
    rows = [(report["scope"]["id"], report["scope"]["name"], report["totals"])]
    if report["scope"]["level"] == "city":
        rows += [(d["id"], d["name"], d) for d in report["by_district"]]
    for sid, name, f in rows:
        out.writerow(
            [report["from"], report["to"], sid, name, f["alarms"]]
            + [f["by_kind"][k] for k in map(str, AlarmKind)]
            + [
                f["ack"]["count"],
                _minutes(f["ack"]["median_s"]),
                _minutes(f["ack"]["p90_s"]),
                f["disposal"]["count"],
                _minutes(f["disposal"]["median_s"]),
                _minutes(f["disposal"]["p90_s"]),
                f["closed_loop"]["within_loop"],
                _ratio(f["closed_loop"]["rate"]),
                f["loop_breached"],
                f["checkins"]["due"],
                f["checkins"]["done"],
                _ratio(f["checkins"]["rate"]),
            ]
        )
    return "\ufeff" + buf.getvalue()
