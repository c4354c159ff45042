"""The live dashboard projection: state kept incrementally from bus events, pushed as
coalesced deltas, rebuilt from the database at start, at local midnight, every
``dashboard_rebuild_s`` and whenever the bus shows a gap.

It is a stream like any bus topic — an ``epoch`` (new per process start) and a ``seq`` (one
per emitted delta) — but its "events" are state: each delta names the sections that changed
and carries their new value. So resuming needs no history: :meth:`changes_since` returns
every section changed after the client's ``seq``, in one delta.

Coalescing: events only mark sections dirty; a loop emits at most ``updates_per_s`` deltas a
second (real time — a protocol rate, not a business deadline), so a storm of thousands of
alarms a second becomes a couple of deltas with exact counts. Business time (SLA deadlines,
"today") is read from the app's :class:`~center.clock.Clock`.

Snapshot-then-subscribe: :meth:`snapshot` and :meth:`position` read only memory, so a caller
that takes both with no ``await`` in between and then applies deltas with a greater ``seq``
misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from center.authz import JurisdictionPath, within
from center.bus import Bus, BusMessage, BusUnavailableError, Unsubscribe, new_epoch
from center.clock import Clock
from center.dashboard.alarms import AlarmBook, AlarmEntry
from center.dashboard.alarms import load as load_alarms
from center.dashboard.books import (
    SPOTCHECK_LIVE_STATES,
    VISIT_LIVE_STATES,
    CheckinBook,
    SessionBook,
    Staffing,
)
from center.dashboard.source import Baseline, DashboardSource
from center.dashboard.view import SECTIONS, DashboardRenderer, DashboardState, DashboardView
from center.jurisdictions import JurisdictionTree
from center.topics import Event

_LOGGER = logging.getLogger(__name__)

DASHBOARD_TOPIC: Final = "dashboard"
SOURCE_TOPICS: Final = ("alarms", "checkins", "duty", "visits", "spotchecks")
_DIRTIES: Final[dict[str, frozenset[str]]] = {
    "alarms": frozenset({"alarms", "closed_loop", "trend", "ticker", "checkins"}),
    "checkins": frozenset({"checkins"}),
    "duty": frozenset({"staffing"}),
    "visits": frozenset({"media"}),
    "spotchecks": frozenset({"media"}),
}
STAFFING_EVENTS: Final = frozenset({Event.DUTY_STAFFING, Event.DUTY_SHIFT})
"""Events on ``duty`` that carry ``{"on_duty", "minimum", "officers"?}`` (center.shifts)."""
_TICK_S: Final = 1.0
"""Real seconds between checks of SLA deadlines and the local day when nothing happens."""

Listener = Callable[[int, frozenset[str]], None]
Position = tuple[str, int]


class DashboardProjection:
    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        tree: JurisdictionTree,
        tz: ZoneInfo,
        source: DashboardSource,
        min_on_duty: int = 2,
        updates_per_s: float = 2.0,
        rebuild_s: float = 300.0,
        ticker_size: int = 20,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._tree = tree
        self._tz = tz
        self._source = source
        self._min_on_duty = min_on_duty
        self._interval = 1.0 / updates_per_s
        self._rebuild_s = rebuild_s
        roots = tree.roots()
        self._city = roots[0].id if roots else ""
        self.renderer = DashboardRenderer(tree, ticker_size)
        self.state = self._empty_state()
        self.epoch = new_epoch()
        self.seq = 0
        self._section_seq: dict[str, int] = dict.fromkeys(SECTIONS, 0)
        self._dirty: set[str] = set()
        self._positions: dict[str, Position] = {}
        self._buffer: list[BusMessage] | None = None
        self._rebuild_wanted = False
        self._listeners: dict[int, Listener] = {}
        self._listener_ids = 0
        self._unsubscribes: list[Unsubscribe] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rebuilds = 0
        self.emitted = 0

    def __repr__(self) -> str:
        return f"<DashboardProjection {self.epoch}#{self.seq} {self.state.alarms!r}>"

    def _empty_state(self) -> DashboardState:
        return DashboardState(
            alarms=AlarmBook(self._tz, self._city),
            checkins=CheckinBook(),
            subjects=Counter(),
            staffing=Staffing(minimum=self._min_on_duty),
            visits=SessionBook(VISIT_LIVE_STATES),
            spotchecks=SessionBook(SPOTCHECK_LIVE_STATES),
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe, build from the database, then start the emit loop."""
        for topic in SOURCE_TOPICS:
            self._unsubscribes.append(self._bus.subscribe(topic, self._on_message))
        await self.rebuild()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="dashboard-projection"
        )

    async def close(self) -> None:
        """Stop the loop and the subscriptions (idempotent)."""
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listeners.clear()

    # -- input --------------------------------------------------------------------------

    def _on_message(self, msg: BusMessage) -> None:
        last = self._positions.get(msg.topic)
        if last is not None and last[0] == msg.epoch:
            if msg.seq <= last[1]:
                return
            if msg.seq > last[1] + 1:
                _LOGGER.warning(
                    "dashboard: %s jumped from #%s to #%s; rebuilding from the database",
                    msg.topic,
                    last[1],
                    msg.seq,
                )
                self._rebuild_wanted = True
        elif last is not None:
            _LOGGER.warning("dashboard: %s has a new epoch; rebuilding", msg.topic)
            self._rebuild_wanted = True
        self._positions[msg.topic] = (msg.epoch, msg.seq)
        if self._buffer is not None:
            self._buffer.append(msg)
        if self._apply(self.state, msg):
            self._dirty |= _DIRTIES[msg.topic]
            self._wake.set()
        elif self._rebuild_wanted:
            self._wake.set()

    def _apply(self, state: DashboardState, msg: BusMessage) -> bool:
        data = msg.data
        if msg.topic == "alarms":
            return state.alarms.apply(data, self._clock.now())
        if msg.topic == "checkins":
            return msg.type == Event.CHECKIN_RECORDED and state.checkins.apply(data)
        if msg.topic == "duty":
            if msg.type not in STAFFING_EVENTS:
                return False
            if data.get("jurisdiction_id") not in (None, "", self._city):
                return False
            return state.staffing.apply(data)
        if msg.topic == "visits":
            return state.visits.apply(data, self._city)
        if msg.topic == "spotchecks":
            return state.spotchecks.apply(data, self._city)
        return False

    async def rebuild(self) -> None:
        """Replace the state with one built from the database plus the events that raced it.

        The current state keeps serving (and applying events) while the baseline loads; the
        events that arrive meanwhile are buffered and replayed onto the new state if they are
        newer than the bus position read before the load. Alarm records are versioned, so an
        event already reflected in the baseline changes nothing when replayed.
        """
        self._rebuild_wanted = False
        self._buffer = []
        try:
            start: dict[str, Position] = {}
            for topic in SOURCE_TOPICS:
                start[topic] = await self._bus.position(topic)
            now = self._clock.now()
            baseline = await self._source.load(now)
        except (BusUnavailableError, OSError) as exc:
            _LOGGER.warning("dashboard: rebuild failed (%s); keeping the live state", exc)
            self._buffer = None
            return
        except Exception:
            self._buffer = None
            raise
        state = self._build(baseline, now)
        for msg in self._buffer:
            epoch, seq = start[msg.topic]
            if msg.epoch != epoch or msg.seq > seq:
                self._apply(state, msg)
        for topic, pos in start.items():
            current = self._positions.get(topic)
            if current is None or current[0] != pos[0] or current[1] < pos[1]:
                self._positions[topic] = pos
        self._buffer = None
        self.state = state
        self.rebuilds += 1
        self._dirty |= set(SECTIONS)
        self._wake.set()
        _LOGGER.info(
            "dashboard rebuilt: %s open alarms, %s subjects",
            len(state.alarms.open),
            state.subjects.total(),
        )

    def _build(self, baseline: Baseline, now: datetime) -> DashboardState:
        state = self._empty_state()
        state.alarms_loaded = baseline.alarms_loaded
        state.subjects.update(baseline.subjects)
        state.alarms.start_day(now)
        load_alarms(state.alarms, baseline.alarms.alarms, now)
        state.checkins.load(baseline.alarms.expected, baseline.alarms.done)
        if baseline.staffing is not None:
            state.staffing.apply(baseline.staffing)
        for spotcheck in baseline.alarms.spotchecks:
            # It rang today (counts for "today"), then is where it is now (live or not).
            state.spotchecks.apply({**spotcheck, "state": "ringing"}, self._city)
            state.spotchecks.apply(spotcheck, self._city)
        return state

    # -- output -------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Unsubscribe:
        """``listener(seq, sections)`` after each emitted delta; synchronous, like the bus."""
        self._listener_ids += 1
        key = self._listener_ids
        self._listeners[key] = listener

        def remove() -> None:
            self._listeners.pop(key, None)

        return remove

    def position(self, topic: str = DASHBOARD_TOPIC) -> Position | None:
        """The dashboard's ``(epoch, seq)``, or the last source-topic position applied."""
        if topic == DASHBOARD_TOPIC:
            return self.epoch, self.seq
        return self._positions.get(topic)

    def snapshot(self, view: DashboardView) -> dict[str, Any]:
        return self.renderer.render(self.state, view, SECTIONS, self._clock.now())

    def changes_since(self, view: DashboardView, epoch: str, seq: int) -> dict[str, Any] | None:
        """Sections changed after ``seq``; None when only a snapshot can resynchronise."""
        if epoch != self.epoch or seq < 0 or seq > self.seq:
            return None
        sections = [s for s in SECTIONS if self._section_seq[s] > seq]
        return self.renderer.render(self.state, view, sections, self._clock.now())

    def render(self, view: DashboardView, sections: Iterable[str]) -> dict[str, Any]:
        return self.renderer.render(self.state, view, sections, self._clock.now())

    def open_alarms(self, scope: JurisdictionPath, limit: int) -> tuple[list[AlarmEntry], int]:
        """Open alarms in ``scope``, newest first, at most ``limit``; and how many in all."""
        everything = scope == self.renderer_root
        matching = [
            e
            for e in self.state.alarms.newest_open()
            if everything or within(scope, self._tree.path(e.node))
        ]
        return matching[:limit], len(matching)

    @property
    def renderer_root(self) -> JurisdictionPath:
        return (self._city,) if self._city else ()

    def _emit(self) -> None:
        self.seq += 1
        self.emitted += 1
        sections = frozenset(self._dirty)
        self._dirty.clear()
        for section in sections:
            self._section_seq[section] = self.seq
        for listener in list(self._listeners.values()):
            try:
                listener(self.seq, sections)
            except Exception:
                _LOGGER.exception("dashboard listener %r failed", listener)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_rebuild = loop.time() + self._rebuild_s
        last_hour = int(self._clock.now().timestamp() // 3600)
        while True:
            # asyncio.timeout: wait_for can swallow a cancellation on 3.11 (see Escalator)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_TICK_S):
                    await self._wake.wait()
            self._wake.clear()
            now = self._clock.now()
            day = now.astimezone(self._tz).date()
            if self._rebuild_wanted or day != self.state.alarms.day or loop.time() >= next_rebuild:
                next_rebuild = loop.time() + self._rebuild_s
                try:
                    await self.rebuild()
                except Exception:
                    _LOGGER.exception("dashboard: rebuild failed; keeping the live state")
            if self.state.alarms.tick(now):
                self._dirty |= {"alarms", "ticker"}
            hour = int(now.timestamp() // 3600)
            if hour != last_hour:
                last_hour = hour
                self.state.alarms.prune_trend(now)
                self._dirty.add("trend")
            if self._dirty:
                self._emit()
                await asyncio.sleep(self._interval)
