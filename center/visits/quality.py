"""Each side's call quality on the visit record: the median of its grades.

The media core grades every participant's uplink and downlink every few seconds
(``media/quality.py``: ``excellent``, ``good``, ``poor``, ``lost``). When a visit ends, the
grades the server measured for the relatives' participants and for the prison terminal's
are each summarised as one grade, the median in that order; with an even count the worse
of the two middle grades, so a call that was half good and half poor reads ``poor``. The
month's figures take the median of those per prison and per visit point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

GRADES: Final = ("excellent", "good", "poor", "lost")
"""Best first (``media.quality.Grade``; ``center`` never imports ``media``)."""
SIDES: Final = ("relatives", "inmate")
_RANK: Final = {g: i for i, g in enumerate(GRADES)}


def median_grade(grades: Iterable[str]) -> str | None:
    """The median grade (the worse middle one of an even count); None with no grade."""
    ranks = sorted(_RANK[g] for g in grades if g in _RANK)
    if not ranks:
        return None
    return GRADES[ranks[len(ranks) // 2]]


def worst_grade(grades: Iterable[str]) -> str | None:
    ranks = [_RANK[g] for g in grades if g in _RANK]
    return GRADES[max(ranks)] if ranks else None


def side_grades(
    by_principal: Mapping[str, Iterable[str]], sides: Mapping[str, frozenset[str]]
) -> dict[str, list[str]]:
    """The grades of each side (``sides``: side → its principal keys); others are dropped."""
    out: dict[str, list[str]] = {side: [] for side in sides}
    for principal, grades in by_principal.items():
        for side, principals in sides.items():
            if principal in principals:
                out[side].extend(grades)
    return out
