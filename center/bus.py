"""The event bus: one interface, two implementations.

The bus carries notifications (``alarm.raised``, ``checkin.recorded``, room signaling) from the
code that changed something to whoever shows it. The database stays the source of truth: the
bus may lose a message (a Redis outage, a full history), so every message carries a per-topic
``epoch`` and ``seq`` that let a consumer notice the loss and resynchronise — replay the gap
with :meth:`Bus.history`, or take a fresh snapshot when :meth:`Bus.history` says it cannot.

:class:`Bus` holds what both implementations share: the subscription registry, delivery with
per-handler error isolation, the metrics and the lifecycle. ``center.bus_local.LocalBus`` keeps
everything in the process; ``center.bus_redis.RedisBus`` shares it between instances.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import itertools
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from center.errors import Outage

_LOGGER = logging.getLogger(__name__)

DEFAULT_HISTORY_SIZE: Final = 1000

Handler = Callable[["BusMessage"], None]
Unsubscribe = Callable[[], None]


class BusError(Outage):
    """Base of the bus's own errors: to a client, ``503 unavailable`` (:func:`center.errors.error_of`)."""

    public_message = "the event bus is unavailable; retry shortly"


class BusStateError(BusError):
    """The bus is not in a state that allows the call (not started, or closed)."""


class BusUnavailableError(BusError):
    """The backing store (Redis) cannot be reached; the call had no effect."""


class BusState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One event on one topic.

    ``seq`` counts from 1 within an ``epoch``; a new epoch means the earlier history is gone
    and a consumer holding an older position must take a snapshot. ``data`` is always what a
    JSON round trip gives (tuples become lists, keys become strings) on every implementation,
    so code tested against the local bus behaves the same against Redis.
    """

    topic: str
    type: str
    data: dict[str, Any]
    origin: str
    seq: int
    epoch: str
    at: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "topic": self.topic,
                "type": self.type,
                "data": self.data,
                "origin": self.origin,
                "seq": self.seq,
                "epoch": self.epoch,
                "at": self.at,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> BusMessage:
        """Parse :meth:`to_json` output; raises ``ValueError`` on anything malformed."""
        try:
            obj = json.loads(raw)
            msg = cls(
                topic=obj["topic"],
                type=obj["type"],
                data=obj["data"],
                origin=obj["origin"],
                seq=obj["seq"],
                epoch=obj["epoch"],
                at=float(obj["at"]),
            )
        except (KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed bus message: {exc!r}") from exc
        if not (
            isinstance(msg.topic, str)
            and isinstance(msg.type, str)
            and isinstance(msg.data, dict)
            and isinstance(msg.origin, str)
            and isinstance(msg.seq, int)
            and isinstance(msg.epoch, str)
        ):
            raise ValueError("malformed bus message: wrong field types")
        return msg

    def __repr__(self) -> str:
        return f"<BusMessage {self.topic} {self.epoch}#{self.seq} {self.type} from {self.origin}>"


def json_roundtrip(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Serialise ``data`` once and return the text and the dict a receiver would decode.

    Raises ``TypeError`` for data that is not JSON-serialisable, at the publisher, on every
    implementation.
    """
    text = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text, json.loads(text)


def new_epoch() -> str:
    return secrets.token_hex(8)


def check_pattern(pattern: str) -> None:
    """A pattern is an exact topic, or a prefix followed by one trailing ``*``."""
    if not pattern or "*" in pattern[:-1]:
        raise ValueError(f"bad topic pattern {pattern!r}: only a trailing '*' is allowed")


def topic_matches(pattern: str, topic: str) -> bool:
    if pattern.endswith("*"):
        return topic.startswith(pattern[:-1])
    return topic == pattern


@dataclass(slots=True)
class BusMetrics:
    """Counters since start: messages this instance published, handler calls that returned,
    and failures (handler exceptions, undecodable messages)."""

    published: int = 0
    delivered: int = 0
    errors: int = 0


@dataclass(slots=True, eq=False)
class _Subscription:
    key: int
    pattern: str
    handler: Handler
    active: bool = True


class Bus(abc.ABC):
    """What the rest of the center needs from the event bus.

    Lifecycle: :meth:`start` once, then :meth:`close` (idempotent, safe concurrently).
    :meth:`publish`, :meth:`history` and :meth:`position` raise :class:`BusStateError` outside
    the running state; :meth:`subscribe` works before :meth:`start` too.

    Delivery: handlers are synchronous and run on the event loop, in ``seq`` order per topic,
    each message once per subscription. A consumer resuming from a snapshot or a replay should
    drop messages whose ``seq`` it has already covered: with Redis, a message in flight while
    :meth:`position` or :meth:`history` ran can still arrive live afterwards.
    """

    def __init__(self, *, history_size: int, instance_id: str | None) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be at least 1, not {history_size}")
        self._history_size = history_size
        self._instance_id = instance_id or secrets.token_hex(6)
        self._state = BusState.NEW
        self._closed: asyncio.Future[None] | None = None
        self._sub_ids = itertools.count()
        self._exact: dict[str, dict[int, _Subscription]] = {}
        self._prefixed: dict[int, _Subscription] = {}
        self.metrics = BusMetrics()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._instance_id} {self._state}>"

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def history_size(self) -> int:
        return self._history_size

    @property
    def state(self) -> BusState:
        return self._state

    @property
    def published(self) -> int:
        return self.metrics.published

    @property
    def delivered(self) -> int:
        return self.metrics.delivered

    @property
    def errors(self) -> int:
        return self.metrics.errors

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._state is not BusState.NEW:
            raise BusStateError(f"cannot start {self!r}: it is {self._state}")
        await self._start()
        self._set_state(BusState.RUNNING)

    async def close(self) -> None:
        """Stop the bus; later and concurrent calls wait for the first one to finish."""
        if self._closed is not None:
            await asyncio.shield(self._closed)
            return
        self._closed = asyncio.get_running_loop().create_future()
        try:
            if self._state is BusState.RUNNING:
                await self._close()
        finally:
            self._set_state(BusState.CLOSED)
            self._exact.clear()
            self._prefixed.clear()
            self._closed.set_result(None)

    def _set_state(self, state: BusState) -> None:
        if state is not self._state:
            _LOGGER.debug("%r: %s -> %s", self, self._state, state)
            self._state = state

    def _check_running(self, action: str) -> None:
        if self._state is not BusState.RUNNING:
            raise BusStateError(f"cannot {action} on {self!r}: it is {self._state}")

    @abc.abstractmethod
    async def _start(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    # -- the interface -------------------------------------------------------------------

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the bus can publish; never raises."""

    @abc.abstractmethod
    async def publish(self, topic: str, type: str, data: Mapping[str, Any]) -> BusMessage:
        """Assign the next ``seq``, keep the message in the topic's history and fan it out.

        Raises ``TypeError`` for data that is not JSON-serialisable and
        :class:`BusUnavailableError` when the backing store is down.
        """

    @abc.abstractmethod
    async def history(self, topic: str, after_seq: int, epoch: str) -> list[BusMessage] | None:
        """Messages with ``seq > after_seq`` in ``epoch``, oldest first.

        ``None`` means the gap cannot be replayed — the epoch changed, ``after_seq`` is older
        than the last ``history_size`` messages, or it is not a position this epoch has had —
        and the caller must send a snapshot instead.
        """

    @abc.abstractmethod
    async def position(self, topic: str) -> tuple[str, int]:
        """The topic's current ``(epoch, last seq)``; ``seq`` is 0 before the first message."""

    def subscribe(self, topic_pattern: str, handler: Handler) -> Unsubscribe:
        """Call ``handler`` for each message whose topic matches ``topic_pattern``.

        The pattern is an exact topic or a prefix with a trailing ``*`` (``"alarm*"``,
        ``"*"``). The returned function unsubscribes and may be called any number of times;
        after it returns, the handler is not called again, even for a message being delivered.
        """
        check_pattern(topic_pattern)
        if inspect.iscoroutinefunction(handler):
            raise TypeError("bus handlers are synchronous; schedule async work from them")
        sub = _Subscription(next(self._sub_ids), topic_pattern, handler)
        if topic_pattern.endswith("*"):
            self._prefixed[sub.key] = sub
        else:
            self._exact.setdefault(topic_pattern, {})[sub.key] = sub

        def unsubscribe() -> None:
            if not sub.active:
                return
            sub.active = False
            if sub.pattern.endswith("*"):
                self._prefixed.pop(sub.key, None)
                return
            subs = self._exact.get(sub.pattern)
            if subs is not None:
                subs.pop(sub.key, None)
                if not subs:
                    del self._exact[sub.pattern]

        return unsubscribe

    def has_subscribers(self, topic: str) -> bool:
        if topic in self._exact:
            return True
        return any(topic_matches(s.pattern, topic) for s in self._prefixed.values())

    def _dispatch(self, msg: BusMessage) -> None:
        """Deliver to every matching handler; one failing handler does not stop the others."""
        exact = self._exact.get(msg.topic)
        subs = list(exact.values()) if exact else []
        subs.extend(s for s in self._prefixed.values() if topic_matches(s.pattern, msg.topic))
        for sub in subs:
            if not sub.active:
                continue
            try:
                sub.handler(msg)
            except Exception:
                self.metrics.errors += 1
                _LOGGER.exception(
                    "%r: handler %r for %r failed on %r", self, sub.handler, sub.pattern, msg
                )
            else:
                self.metrics.delivered += 1

    async def publish_many(
        self, topic: str, type: str, datas: Sequence[Mapping[str, Any]]
    ) -> list[BusMessage]:
        """:meth:`publish` for a run of events of one type on one topic (an ingestion batch);
        implementations may do it in fewer round trips. Order is kept."""
        return [await self.publish(topic, type, data) for data in datas]

    async def notify_many(self, topic: str, type: str, datas: Sequence[Mapping[str, Any]]) -> None:
        """:meth:`notify` for :meth:`publish_many`."""
        if not datas:
            return
        try:
            await self.publish_many(topic, type, datas)
        except BusStateError:
            _LOGGER.debug("%r: dropped %d %s on %s after close", self, len(datas), type, topic)
        except BusUnavailableError as exc:
            _LOGGER.warning("%r: dropped %d %s on %s: %s", self, len(datas), type, topic, exc)

    async def notify(self, topic: str, type: str, data: Mapping[str, Any]) -> BusMessage | None:
        """:meth:`publish` for callers that already committed to the database.

        The bus is allowed to lose notifications, so a closed bus or a Redis outage must not
        turn a successful action into an error; it is logged and ``None`` is returned.
        """
        try:
            return await self.publish(topic, type, data)
        except BusStateError:
            _LOGGER.debug("%r: dropped %s on %s after close", self, type, topic)
        except BusUnavailableError as exc:
            _LOGGER.warning("%r: dropped %s on %s: %s", self, type, topic, exc)
        return None
