"""The prison's list as CSV, and the month's figures per prison and per visit point.

CSV cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR)
are prefixed with ``'``: reasons and notes are typed by staff.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any, Final

import msgspec

from center.visits.models import VisitOutcome
from center.visits.quality import SIDES, median_grade
from center.visits.view import VisitOut

CSV_COLUMNS: Final = (
    "id",
    "prison_id",
    "inmate_id",
    "visit_point_id",
    "starts_at",
    "ends_at",
    "state",
    "outcome",
    "privileged",
    "emergency",
    "relatives",
    "joined",
    "live_at",
    "ended_at",
    "reason",
)
_FORMULA: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA):
        return "'" + text
    return text


def visits_csv(visits: list[VisitOut]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for v in visits:
        writer.writerow(
            [
                _cell(x)
                for x in (
                    v.id,
                    v.prison_id,
                    v.inmate_id,
                    v.visit_point_id,
                    v.starts_at,
                    v.ends_at,
                    v.state,
                    v.outcome,
                    "1" if v.privileged else "0",
                    "1" if v.emergency else "0",
                    len(v.relatives),
                    sum(1 for r in v.relatives if r.joined_at is not None),
                    v.live_at,
                    v.ended_at,
                    v.reason,
                )
            ]
        )
    return out.getvalue()


class Figures(msgspec.Struct):
    """One row of the month: how its visits ended (``held`` = completed + terminated), and
    the median quality grade of its graded visits (each side's median on the record; see
    center/visits/quality.py), both sides together and each side alone."""

    id: str
    booked: int
    held: int
    completed: int
    terminated: int
    no_show: int
    cancelled: int
    refused: int
    median_quality: str | None = None
    median_quality_relatives: str | None = None
    median_quality_inmate: str | None = None


class MonthFigures(msgspec.Struct):
    month: str
    by_prison: list[Figures]
    by_visit_point: list[Figures]


Grades = dict[str, list[str]]
"""side → the side grades of the row's visits"""


def _row(key: str, outcomes: Counter[str], grades: Grades) -> Figures:
    completed = outcomes[VisitOutcome.COMPLETED]
    terminated = outcomes[VisitOutcome.TERMINATED]
    relatives, inmate = grades.get("relatives", []), grades.get("inmate", [])
    return Figures(
        id=key,
        booked=sum(outcomes.values()),
        held=completed + terminated,
        completed=completed,
        terminated=terminated,
        no_show=outcomes[VisitOutcome.NO_SHOW],
        cancelled=outcomes[VisitOutcome.CANCELLED],
        refused=outcomes[VisitOutcome.REFUSED],
        median_quality=median_grade(relatives + inmate),
        median_quality_relatives=median_grade(relatives),
        median_quality_inmate=median_grade(inmate),
    )


def month_figures(
    month: str,
    rows: list[tuple[str, str | None, str | None]],
    quality: list[dict[str, str | None]] | None = None,
) -> MonthFigures:
    """``rows``: (prison, visit point, outcome or None while not ended) per visit;
    ``quality``: the same visits' side grades (``{"relatives", "inmate"}``), in order."""
    prisons: dict[str, Counter[str]] = {}
    points: dict[str, Counter[str]] = {}
    prison_grades: dict[str, Grades] = {}
    point_grades: dict[str, Grades] = {}
    sides = quality if quality is not None else [{} for _ in rows]
    for (prison, point, outcome), graded in zip(rows, sides, strict=True):
        key = outcome or "open"
        prisons.setdefault(prison, Counter())[key] += 1
        targets = [prison_grades.setdefault(prison, {})]
        if point:
            points.setdefault(point, Counter())[key] += 1
            targets.append(point_grades.setdefault(point, {}))
        for side in SIDES:
            grade = graded.get(side)
            if grade is not None:
                for target in targets:
                    target.setdefault(side, []).append(grade)
    return MonthFigures(
        month=month,
        by_prison=[_row(k, c, prison_grades.get(k, {})) for k, c in sorted(prisons.items())],
        by_visit_point=[_row(k, c, point_grades.get(k, {})) for k, c in sorted(points.items())],
    )
