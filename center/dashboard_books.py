"""The smaller live books behind the dashboard: check-ins, staffing, visits and spot-checks.

Like :mod:`center.dashboard_alarms`, counts are keyed by node (street, or district when a
baseline only knows districts) and repeated events are recognised by a key, so a replayed
event does not count twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

VISIT_LIVE_STATES: Final = frozenset({"live"})
SPOTCHECK_LIVE_STATES: Final = frozenset({"live", "connected", "calling", "ringing"})


class CheckinBook:
    """Today's check-ins: expected and done per node.

    ``expected`` and the baseline ``done`` come from the database per district (the alarm
    engine's ``checkin_stats_today``); live ``checkin.recorded`` events add to ``done`` on
    their street, once per ``(subject, window)`` (or per ``event_id`` without a window).
    A check-in that raced the rebuild can be counted twice until the next rebuild; missed
    windows are counted from ``no_checkin`` alarms (see :class:`~center.dashboard_alarms.
    AlarmBook`), which are unique per window.
    """

    def __init__(self) -> None:
        self.expected: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"<CheckinBook expected={self.expected.total()} done={self.done.total()}>"

    def load(self, stats: dict[str, dict[str, int]]) -> None:
        for node, row in stats.items():
            self.expected[node] += int(row.get("expected", 0))
            self.done[node] += int(row.get("done", 0))

    def apply(self, data: dict[str, Any]) -> bool:
        subject = data.get("subject_id")
        window = data.get("window_start")
        key = f"{subject}@{window}" if subject and window else f"event:{data.get('event_id')}"
        if key in self._seen:
            return False
        self._seen.add(key)
        node = str(data.get("street_id") or data.get("district_id") or "")
        if not node:
            return False
        self.done[node] += 1
        return True


@dataclass(slots=True)
class Staffing:
    """Who is on duty. ``roster`` is False until a shift roster is known (a ``duty.shift``
    event or a baseline), and only then can ``warning`` be raised: with no roster at all the
    wall says so instead of crying wolf."""

    minimum: int
    on_duty: int = 0
    roster: bool = False
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
        self.roster = True
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "on_duty": self.on_duty,
            "minimum": self.minimum,
            "warning": self.warning,
            "roster": self.roster,
        }


class SessionBook:
    """Visits or spot-checks: which are live now and which went live today, per node."""

    def __init__(self, live_states: frozenset[str]) -> None:
        self._live_states = live_states
        self._live: dict[str, str] = {}
        self._today: dict[str, str] = {}
        self.live: Counter[str] = Counter()
        self.today: Counter[str] = Counter()

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
