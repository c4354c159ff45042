"""Location rules: out of bounds (越界) and person–phone separation (人机分离).

State per subject lives in memory and only for subjects that send fixes. A rule *fires* on a
transition into violation and *clears* on the transition out; the raiser folds repeated
firings into the open alarm, so jitter that flips a subject in and out stays one alarm.

* Out of bounds needs ``consecutive`` fixes outside the city (GPS jitter near the border
  produces single stray fixes), is ignored while the subject is on approved leave, and
  ignores fixes whose accuracy is worse than ``max_accuracy_m``.
* Separation compares the latest phone and bracelet fixes when both are fresh (within
  ``fresh_s`` of each other and of the newest fix) and fires when they are farther apart
  than ``separation_m`` plus both accuracy radii.

Known limit: with several instances behind a load balancer the consecutive count is per
instance; route a subject's fixes to one instance (or accept a slower trigger).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.items import LocationFixIn
from alerts.leave import LeaveBook
from alerts.models import AlarmKind, DeviceType

_EARTH_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(slots=True)
class _Fix:
    at: float
    lat: float
    lon: float
    accuracy_m: float


@dataclass(slots=True)
class _SubjectState:
    last_at: float = 0.0
    out_count: int = 0
    out_of_bounds: bool = False
    separated: bool = False
    phone: _Fix | None = None
    bracelet: _Fix | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule fired (``active``) or cleared for a subject at ``at`` (POSIX seconds)."""

    kind: str
    active: bool
    at: float
    details: dict[str, object] = field(default_factory=dict)


class LocationRules:
    def __init__(
        self,
        *,
        leaves: LeaveBook,
        in_city: Callable[[float, float], bool],
        consecutive: int,
        max_accuracy_m: float,
        separation_m: float,
        fresh_s: float,
    ) -> None:
        self._leaves = leaves
        self._in_city = in_city
        self._consecutive = consecutive
        self._max_accuracy = max_accuracy_m
        self._separation = separation_m
        self._fresh = fresh_s
        self._state: dict[str, _SubjectState] = {}

    def __len__(self) -> int:
        return len(self._state)

    def observe(self, subject_id: str, fixes: list[LocationFixIn]) -> list[Transition]:
        """Feed one subject's new fixes (any order); returns the transitions they cause."""
        st = self._state.get(subject_id)
        if st is None:
            st = self._state[subject_id] = _SubjectState()
        out: list[Transition] = []
        for fix in sorted(fixes, key=lambda f: f.at):
            ts = fix.at.timestamp()
            if ts < st.last_at or fix.accuracy_m > self._max_accuracy:
                continue  # out of order or too vague to judge
            st.last_at = ts
            self._bounds(subject_id, st, fix, ts, out)
            self._separation_rule(st, fix, ts, out)
        return out

    def _bounds(
        self,
        subject_id: str,
        st: _SubjectState,
        fix: LocationFixIn,
        ts: float,
        out: list[Transition],
    ) -> None:
        inside = self._in_city(fix.lon, fix.lat) or self._leaves.on_leave(subject_id, ts)
        if inside:
            st.out_count = 0
            if st.out_of_bounds:
                st.out_of_bounds = False
                out.append(Transition(AlarmKind.OUT_OF_BOUNDS, False, ts))
            return
        st.out_count += 1
        if st.out_count >= self._consecutive and not st.out_of_bounds:
            st.out_of_bounds = True
            out.append(
                Transition(
                    AlarmKind.OUT_OF_BOUNDS,
                    True,
                    ts,
                    {"lat": fix.lat, "lon": fix.lon, "fixes_outside": st.out_count},
                )
            )

    def _separation_rule(
        self, st: _SubjectState, fix: LocationFixIn, ts: float, out: list[Transition]
    ) -> None:
        f = _Fix(ts, fix.lat, fix.lon, fix.accuracy_m)
        if fix.device == DeviceType.PHONE:
            st.phone = f
        else:
            st.bracelet = f
        phone, bracelet = st.phone, st.bracelet
        if phone is None or bracelet is None or abs(phone.at - bracelet.at) > self._fresh:
            return
        gap = distance_m(phone.lat, phone.lon, bracelet.lat, bracelet.lon)
        apart = gap - phone.accuracy_m - bracelet.accuracy_m > self._separation
        if apart and not st.separated:
            st.separated = True
            out.append(Transition(AlarmKind.SEPARATION, True, ts, {"distance_m": round(gap)}))
        elif not apart and st.separated:
            st.separated = False
            out.append(Transition(AlarmKind.SEPARATION, False, ts, {"distance_m": round(gap)}))
