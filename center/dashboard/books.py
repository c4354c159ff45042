"""The smaller live books behind the dashboard: check-ins, staffing, visits and spot-checks.

Like :mod:`center.dashboard.alarms`, counts are keyed by node (street, or district when a
baseline only knows districts) and repeated events are recognised by a key, so a replayed
event does not count twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from center.dashboard.alarms import parse_time

VISIT_LIVE_STATES: Final = frozenset({"live"})
SPOTCHECK_LIVE_STATES: Final = frozenset({"live", "connected", "calling", "ringing"})


class CheckinBook:
    """Today's check-ins: expected and done per node.

    ``done`` counts check-in windows satisfied on time — distinct ``(subject, window)`` pairs
    of non-late check-ins — so a second check-in in the same window, a replayed event or a
    check-in that raced a rebuild counts once. A late check-in does not make a window done:
    that window is already counted as missed (by its ``no_checkin`` alarm, see
    :class:`~center.dashboard.alarms.AlarmBook`). ``expected`` comes from the database per
    district (the alarm engine's ``checkin_stats_today``), when it provides it.
    """

    def __init__(self) -> None:
        self.expected: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.expected_known = False
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"<CheckinBook expected={self.expected.total()} done={self.done.total()}>"

    @staticmethod
    def key(subject_id: Any, window_start: Any) -> str | None:
        when = parse_time(window_start)
        if not subject_id or when is None:
            return None
        return f"{subject_id}@{int(when.timestamp())}"

    def load(self, expected: dict[str, dict[str, int]] | None, done: list[tuple[str, str]]) -> None:
        """``expected``: node → {"expected": n}; ``done``: (node, key) of satisfied windows."""
        if expected is not None:
            self.expected_known = True
            for node, row in expected.items():
                self.expected[node] += int(row.get("expected", 0))
        for node, key in done:
            if key not in self._seen:
                self._seen.add(key)
                self.done[node] += 1

    def apply(self, data: dict[str, Any]) -> bool:
        if data.get("late"):
            return False
        key = self.key(data.get("subject_id"), data.get("window_start"))
        if key is None or key in self._seen:
            return False
        node = str(data.get("street_id") or data.get("district_id") or "")
        if not node:
            return False
        self._seen.add(key)
        self.done[node] += 1
        return True


@dataclass(slots=True)
class Staffing:
    """Who is on duty at one jurisdiction (the city center), from ``duty.staffing`` events
    (:mod:`center.shifts`) or the open sign-ons at a rebuild. ``roster`` stays False until
    either is known, and only then can ``warning`` be raised: without a duty service the wall
    says "unknown" instead of crying wolf."""

    minimum: int
    on_duty: int = 0
    roster: bool = False
    jurisdiction_id: str = ""
    officers: list[str] = field(default_factory=list)

    @property
    def warning(self) -> bool:
        return self.roster and self.on_duty < self.minimum

    def apply(self, data: dict[str, Any]) -> bool:
        on_duty = data.get("on_duty")
        officers = data.get("officers")
        if isinstance(officers, list):
            self.officers = [str(o) for o in officers][:20]
            if not isinstance(on_duty, int):
                on_duty = len(officers)
        if not isinstance(on_duty, int) or isinstance(on_duty, bool):
            return False
        minimum = data.get("minimum")
        if isinstance(minimum, int) and not isinstance(minimum, bool) and minimum >= 0:
            self.minimum = minimum
        self.on_duty = max(0, on_duty)
        self.jurisdiction_id = str(data.get("jurisdiction_id") or self.jurisdiction_id)
        self.roster = True
        return True

    def as_json(self) -> dict[str, Any]:
        """Officers' usernames stay out: the wall shows counts, not who."""
        return {
            "on_duty": self.on_duty,
            "minimum": self.minimum,
            "warning": self.warning,
            "roster": self.roster,
        }


class SessionBook:
    """Visits or spot-checks: which are live now and which went live today, per node; and
    which ended ``terminated`` today (a visit stopped by staff: the wall's visit counters)."""

    def __init__(self, live_states: frozenset[str]) -> None:
        self._live_states = live_states
        self._live: dict[str, str] = {}
        self._today: dict[str, str] = {}
        self._terminated: set[str] = set()
        self.live: Counter[str] = Counter()
        self.today: Counter[str] = Counter()
        self.terminated: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<SessionBook live={len(self._live)} today={len(self._today)}>"

    def apply(self, data: dict[str, Any], city: str) -> bool:
        session_id = data.get("id")
        state = data.get("state")
        if session_id is None or not isinstance(state, str):
            return False
        key = str(session_id)
        node = str(data.get("street_id") or data.get("district_id") or city)
        changed = False
        if data.get("outcome") == "terminated" and key not in self._terminated:
            self._terminated.add(key)
            self.terminated[node] += 1
            changed = True
        if state in self._live_states:
            if key not in self._live:
                self._live[key] = node
                self.live[node] += 1
                changed = True
            if key not in self._today:
                self._today[key] = node
                self.today[node] += 1
                changed = True
        elif key in self._live:
            old = self._live.pop(key)
            self.live[old] -= 1
            if self.live[old] <= 0:
                del self.live[old]
            changed = True
        return changed
