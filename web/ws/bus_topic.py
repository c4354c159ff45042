"""A websocket topic that streams a bus topic of the same name (``alarms``, ``room:<id>``).

One bus subscription per topic name serves every local subscriber. Each bus message is
filtered and serialised once per recipient class (:meth:`Topic.view_key`), then wrapped per
client with its subscribe id — the per-client cost is a string format and a queue append.

No gap between the result and the first event: a subscription is registered *before* the
awaits of its first reply (history or snapshot) and buffers live messages meanwhile; once the
result is sent the buffer is flushed, dropping what the reply already covered (``seq`` at or
below the reply's). Then each message must be the next ``seq`` of the same epoch; a jump or a
new epoch (the bus lost messages, or Redis was flushed) ends the subscription with a
``resync`` event, and the client subscribes again with ``since`` to replay or re-snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from center.bus import Bus, BusMessage, BusUnavailableError, Unsubscribe
from web.ws.messages import dumps, event_body, event_frame
from web.ws.topics import SubscribeRequest, Topic, subscribe_result

if TYPE_CHECKING:
    from web.ws.connection import Connection

_LOGGER = logging.getLogger(__name__)

Position = tuple[str, int]
_FILTERED = ""


@dataclass(slots=True, eq=False)
class _Stream:
    name: str
    unsubscribe: Unsubscribe
    subs: set[StreamSubscription] = field(default_factory=set)


class StreamSubscription:
    __slots__ = ("_stream", "_topic", "active", "conn", "epoch", "id", "pending", "seq", "view")

    def __init__(
        self, conn: Connection, sub_id: int, view: Hashable, topic: BusTopic, stream: _Stream
    ) -> None:
        self.conn = conn
        self.id = sub_id
        self.view = view
        self._topic = topic
        self._stream = stream
        self.epoch = ""
        self.seq = 0
        self.pending: list[BusMessage] | None = []
        self.active = True

    def __repr__(self) -> str:
        return f"<StreamSubscription {self._stream.name} #{self.id} {self.epoch}#{self.seq}>"

    def start(self, epoch: str, seq: int) -> None:
        self.epoch, self.seq = epoch, seq

    def activate(self) -> None:
        """The result is out: deliver what arrived meanwhile, then go live."""
        pending, self.pending = self.pending or [], None
        for msg in pending:
            self.offer(msg, {})

    def offer(self, msg: BusMessage, cache: dict[Hashable, str]) -> None:
        if not self.active:
            return
        if self.pending is not None:
            self.pending.append(msg)
            return
        if msg.epoch == self.epoch and msg.seq <= self.seq:
            return
        if msg.epoch != self.epoch or msg.seq != self.seq + 1:
            reason = "epoch" if msg.epoch != self.epoch else "gap"
            self.conn.logger.info(
                "%s #%s: %s at %s#%s; asking the client to resync",
                self._stream.name,
                self.id,
                reason,
                msg.epoch,
                msg.seq,
            )
            body = event_body("resync", self.seq, {"reason": reason}, epoch=self.epoch)
            self.conn.send_raw(event_frame(self.id, dumps(body)))
            self.conn.remove_subscription(self.id)
            return
        self.seq = msg.seq
        encoded = cache.get(self.view)
        if encoded is None:
            data = self._topic.render(msg, self.view)
            encoded = _FILTERED if data is None else dumps(self._topic.event_of(msg, data))
            cache[self.view] = encoded
        if encoded:
            self.conn.send_raw(event_frame(self.id, encoded))

    def close(self) -> None:
        if not self.active:
            return
        self.active = False
        self.pending = None
        self._topic._drop(self._stream, self)


class BusTopic(Topic):
    """Subclasses override :meth:`render` (per-view filtering) and :meth:`snapshot`."""

    def __init__(self, name: str, action: str, bus: Bus) -> None:
        self.name = name
        self.action = action
        self._bus = bus
        self._streams: dict[str, _Stream] = {}

    @property
    def subscriber_count(self) -> int:
        return sum(len(s.subs) for s in self._streams.values())

    # -- hooks --------------------------------------------------------------------------

    def render(self, msg: BusMessage, view: Hashable) -> Any | None:
        """The event data this recipient class sees, or None to skip it. Default: as is."""
        return msg.data

    async def snapshot(self, req: SubscribeRequest, view: Hashable) -> tuple[Position, Any]:
        """The state to start from and the position it reflects. Default: no state, the
        bus's current position (safe because live messages are buffered meanwhile)."""
        return await self._bus.position(req.topic), {}

    def event_of(self, msg: BusMessage, data: Any) -> dict[str, Any]:
        return dict(event_body(msg.type, msg.seq, data, epoch=msg.epoch, at=msg.at))

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(self, conn: Connection, req: SubscribeRequest) -> None:
        view = self.view_key(conn.principal_required, req.scope)
        stream = self._streams.get(req.topic)
        if stream is None:
            stream = _Stream(req.topic, lambda: None)
            stream.unsubscribe = self._bus.subscribe(req.topic, lambda m: self._fanout(stream, m))
            self._streams[req.topic] = stream
        sub = StreamSubscription(conn, req.msg_id, view, self, stream)
        stream.subs.add(sub)
        conn.add_subscription(req.msg_id, sub.close)
        try:
            result = await self._first_reply(sub, req, view)
        except BaseException:
            conn.remove_subscription(req.msg_id)
            raise
        conn.send_result(req.msg_id, result)
        sub.activate()

    async def _first_reply(
        self, sub: StreamSubscription, req: SubscribeRequest, view: Hashable
    ) -> dict[str, Any]:
        if req.since is not None:
            epoch, after = req.since
            try:
                history = await self._bus.history(req.topic, after, epoch)
            except BusUnavailableError as exc:
                sub.conn.logger.warning("history of %s unavailable (%s); snapshot", req.topic, exc)
                history = None
            if history is not None:
                events = []
                for msg in history:
                    data = self.render(msg, view)
                    if data is not None:
                        events.append(self.event_of(msg, data))
                last = history[-1].seq if history else after
                sub.start(epoch, last)
                return subscribe_result(req.topic, epoch, last, events=events)
        (epoch, seq), snapshot = await self.snapshot(req, view)
        sub.start(epoch, seq)
        return subscribe_result(req.topic, epoch, seq, snapshot=snapshot)

    def _fanout(self, stream: _Stream, msg: BusMessage) -> None:
        cache: dict[Hashable, str] = {}
        for sub in list(stream.subs):
            sub.offer(msg, cache)

    def _drop(self, stream: _Stream, sub: StreamSubscription) -> None:
        stream.subs.discard(sub)
        if not stream.subs and self._streams.get(stream.name) is stream:
            del self._streams[stream.name]
            stream.unsubscribe()

    async def close(self) -> None:
        for stream in list(self._streams.values()):
            stream.unsubscribe()
        self._streams.clear()
