"""The live book of alarms behind the dashboard: open alarms, today's alarms, the 24-hour trend.

Counts are kept per *node* — the alarm's street, or its district when it has no street — so
that any jurisdiction's view is a sum over the nodes below it, and every count is derived
from a keyed record (alarm id → last version seen), never from "+1 per event". That is what
makes a storm exact: a repeated or replayed ``alarm.raised``/``alarm.updated`` changes
nothing, and replaying the events that raced a rebuild, in order, lands on the right state.

Which states count as closed or acknowledged comes from :mod:`center.alarm_vocab`
(:data:`CLOSED_STATES`, :data:`ACKED_STATES`), the one vocabulary the workflow, the console
queue and the reports use too.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

# A ``resolved`` alarm is disposed: closed here, as in the daily report; the console queue
# lists it only as awaiting close (center.alarm_vocab).
from center.alarm_vocab import ACKED_STATES as ACKED_STATES
from center.alarm_vocab import CLOSED_STATES as CLOSED_STATES
from center.alarm_vocab import AlarmKind

NO_CHECKIN: Final = str(AlarmKind.NO_CHECKIN)
RECENT_IDS: Final = 500
"""Alarm ids remembered for the ticker, newest last (a view scans them from the end)."""


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (the alarm JSON) or epoch seconds → aware datetime; anything else → None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else None
    return None


@dataclass(slots=True)
class AlarmEntry:
    """What the book keeps of one open alarm (``data`` is the last alarm JSON seen)."""

    id: str
    node: str
    district: str
    kind: str
    severity: str
    state: str
    version: int
    ack_due_at: datetime | None
    data: dict[str, Any]

    @property
    def acked(self) -> bool:
        return self.state in ACKED_STATES or bool(self.data.get("acknowledged_at"))

    def __repr__(self) -> str:
        return f"<AlarmEntry {self.id} v{self.version} {self.kind} {self.state}@{self.node}>"


@dataclass(slots=True)
class _TodayEntry:
    node: str
    kind: str
    closed: bool


class AlarmBook:
    """Open alarms and today's tallies, updated by :meth:`apply` in O(log n) per event."""

    def __init__(self, tz: ZoneInfo, city_id: str) -> None:
        self._tz = tz
        self._city = city_id
        self.open: dict[str, AlarmEntry] = {}
        self.open_by_node: Counter[str] = Counter()
        self.by_severity: Counter[tuple[str, str]] = Counter()
        self.by_kind: Counter[tuple[str, str]] = Counter()
        self.overdue: set[str] = set()
        self.overdue_by_node: Counter[str] = Counter()
        self._due: list[tuple[datetime, str, int]] = []
        self.day: date | None = None
        self._today: dict[str, _TodayEntry] = {}
        self.raised_today: Counter[str] = Counter()
        self.closed_today: Counter[str] = Counter()
        self.missed_today: Counter[str] = Counter()
        self._trend_ids: dict[str, tuple[str, int]] = {}
        self.trend: Counter[tuple[str, int]] = Counter()
        self.recent: deque[str] = deque(maxlen=RECENT_IDS)

    def __repr__(self) -> str:
        return f"<AlarmBook open={len(self.open)} overdue={len(self.overdue)} day={self.day}>"

    # -- updates ------------------------------------------------------------------------

    def start_day(self, now: datetime) -> None:
        """Set the local day whose tallies the book keeps (call before loading a baseline)."""
        self.day = now.astimezone(self._tz).date()

    def apply(self, data: dict[str, Any], now: datetime) -> bool:
        """Fold one alarm JSON in; False when it was stale (an older version than known)."""
        alarm_id = data.get("id")
        if alarm_id is None:
            return False
        alarm_id = str(alarm_id)
        version = _int(data.get("version"), 0)
        old = self.open.get(alarm_id)
        if old is not None and version < old.version:
            return False
        state = str(data.get("state") or "open")
        node = str(data.get("street_id") or data.get("district_id") or self._city)
        district = str(data.get("district_id") or node)
        kind = str(data.get("kind") or "unknown")
        if old is not None:
            self._remove_open(old)
        if state not in CLOSED_STATES:
            entry = AlarmEntry(
                id=alarm_id,
                node=node,
                district=district,
                kind=kind,
                severity=str(data.get("severity") or "unknown"),
                state=state,
                version=version,
                ack_due_at=parse_time(data.get("ack_due_at")),
                data=data,
            )
            self._add_open(entry, now)
        self._count_today(alarm_id, node, kind, state, parse_time(data.get("first_seen")))
        self.recent.append(alarm_id)
        return True

    def _add_open(self, entry: AlarmEntry, now: datetime) -> None:
        self.open[entry.id] = entry
        self.open_by_node[entry.node] += 1
        self.by_severity[(entry.node, entry.severity)] += 1
        self.by_kind[(entry.node, entry.kind)] += 1
        if entry.ack_due_at is not None and not entry.acked:
            if entry.ack_due_at <= now:
                self._mark_overdue(entry)
            else:
                heapq.heappush(self._due, (entry.ack_due_at, entry.id, entry.version))

    def _remove_open(self, entry: AlarmEntry) -> None:
        del self.open[entry.id]
        _dec(self.open_by_node, entry.node)
        _dec(self.by_severity, (entry.node, entry.severity))
        _dec(self.by_kind, (entry.node, entry.kind))
        if entry.id in self.overdue:
            self.overdue.discard(entry.id)
            _dec(self.overdue_by_node, entry.node)

    def _mark_overdue(self, entry: AlarmEntry) -> None:
        if entry.id not in self.overdue:
            self.overdue.add(entry.id)
            self.overdue_by_node[entry.node] += 1

    def tick(self, now: datetime) -> bool:
        """Move alarms whose acknowledge deadline passed into ``overdue``; True if any did."""
        changed = False
        while self._due and self._due[0][0] <= now:
            _, alarm_id, version = heapq.heappop(self._due)
            entry = self.open.get(alarm_id)
            if entry is not None and entry.version == version and not entry.acked:
                self._mark_overdue(entry)
                changed = True
        return changed

    def _count_today(
        self, alarm_id: str, node: str, kind: str, state: str, first_seen: datetime | None
    ) -> None:
        if first_seen is None:
            return
        hour = int(first_seen.timestamp() // 3600)
        if alarm_id not in self._trend_ids:
            self._trend_ids[alarm_id] = (node, hour)
            self.trend[(node, hour)] += 1
        if self.day is None or first_seen.astimezone(self._tz).date() != self.day:
            return
        closed = state in CLOSED_STATES
        entry = self._today.get(alarm_id)
        if entry is None:
            self._today[alarm_id] = _TodayEntry(node, kind, closed)
            self.raised_today[node] += 1
            if kind == NO_CHECKIN:
                self.missed_today[node] += 1
            if closed:
                self.closed_today[node] += 1
        elif entry.closed != closed:
            entry.closed = closed
            if closed:
                self.closed_today[entry.node] += 1
            else:
                _dec(self.closed_today, entry.node)

    def prune_trend(self, now: datetime) -> None:
        """Forget trend entries older than the 24 hours the wall shows."""
        oldest = int(now.timestamp() // 3600) - 23
        stale = [k for k, (_, hour) in self._trend_ids.items() if hour < oldest]
        for alarm_id in stale:
            node, hour = self._trend_ids.pop(alarm_id)
            _dec(self.trend, (node, hour))

    # -- reads --------------------------------------------------------------------------

    def recent_open(self) -> Iterator[AlarmEntry]:
        """Open alarms, most recently raised or updated first, each once."""
        seen: set[str] = set()
        for alarm_id in reversed(self.recent):
            if alarm_id in seen:
                continue
            seen.add(alarm_id)
            entry = self.open.get(alarm_id)
            if entry is not None:
                yield entry

    def newest_open(self) -> list[AlarmEntry]:
        """Every open alarm, newest ``last_seen`` first (for snapshots; O(n log n))."""
        return sorted(
            self.open.values(),
            key=lambda e: str(e.data.get("last_seen") or e.data.get("first_seen") or ""),
            reverse=True,
        )

    def is_overdue(self, alarm_id: str) -> bool:
        return alarm_id in self.overdue


def load(book: AlarmBook, alarms: Iterable[dict[str, Any]], now: datetime) -> None:
    """Fill a fresh book from a database baseline (open alarms and the last day's alarms)."""
    for data in alarms:
        book.apply(data, now)
    book.prune_trend(now)


def _dec(counter: Counter[Any], key: Any) -> None:
    n = counter[key] - 1
    if n > 0:
        counter[key] = n
    else:
        del counter[key]


def _int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default
