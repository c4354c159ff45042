"""The bus shared between instances through Redis.

Per topic, Redis holds three keys under ``<prefix>bus:``: ``epoch:<topic>`` and
``seq:<topic>`` (created together; if either is missing — a flush, an eviction, an expiry —
the topic starts a new epoch and its old history is dropped) and ``stream:<topic>``, a stream
trimmed with ``MAXLEN ~ history_size`` whose entry ids are ``<seq>-0``. A Lua script assigns
the seq, appends to the stream and publishes on ``<prefix>bus:msg:<topic>`` in one step, so
the stream and the pub/sub channel carry every topic's messages in seq order, whichever
instance published them.

Every instance, the publisher included, delivers to its local subscribers from pub/sub only:
that is what makes the order the same everywhere (a direct delivery could overtake another
instance's earlier message still in flight). The price is that :meth:`RedisBus.publish`
returns before local subscribers have seen the message.

One reader task holds the ``PSUBSCRIBE``. When Redis drops it reconnects with backoff, logs
one warning per outage, and on reconnect replays from the streams what its subscribers missed
on the topics it had already seen, so a short outage costs latency, not messages (unless the
history was trimmed or the epoch changed meanwhile; subscribers see that as a seq gap or a new
epoch). Publishing needs Redis: while it is down :meth:`RedisBus.publish` raises
:class:`~center.bus.BusUnavailableError` (or use :meth:`~center.bus.Bus.notify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Mapping
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from center.bus import (
    DEFAULT_HISTORY_SIZE,
    Bus,
    BusMessage,
    BusUnavailableError,
    new_epoch,
)

_LOGGER = logging.getLogger(__name__)

_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
_BACKOFF_MIN: Final = 0.1
_BACKOFF_MAX: Final = 5.0
_KEEPALIVE: Final = 15.0
"""Seconds of pub/sub silence before a PING; a second silent interval means a dead link."""
_SEEN_TOPICS_MAX: Final = 10_000
_START_TIMEOUT: Final = 10.0

# Shared by both scripts: KEYS = epoch, seq, stream; ARGV[1] = a fresh epoch to use if the
# topic has none. The epoch and seq keys live and die together.
_ENSURE_EPOCH: Final = """
local function ensure_epoch()
  local epoch = redis.call('GET', KEYS[1])
  if epoch and redis.call('EXISTS', KEYS[2]) == 1 then
    return epoch
  end
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], 0)
  redis.call('DEL', KEYS[3])
  return ARGV[1]
end
local function touch(ttl_ms)
  if ttl_ms > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl_ms)
    redis.call('PEXPIRE', KEYS[2], ttl_ms)
    redis.call('PEXPIRE', KEYS[3], ttl_ms)
  end
end
"""

# ARGV[2] = ttl ms (0: none), ARGV[3] = maxlen, ARGV[4] = channel,
# ARGV[5] = the message as a JSON object without epoch and seq (starts with '{').
_PUBLISH_LUA: Final = (
    _ENSURE_EPOCH
    + """
local epoch = ensure_epoch()
local seq = redis.call('INCR', KEYS[2])
local payload = '{"epoch":"' .. epoch .. '","seq":' .. seq .. ',' .. string.sub(ARGV[5], 2)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'm', payload)
redis.call('PUBLISH', ARGV[4], payload)
touch(tonumber(ARGV[2]))
return {epoch, seq}
"""
)

# ARGV[2] = ttl ms (0: none).
_POSITION_LUA: Final = (
    _ENSURE_EPOCH
    + """
local epoch = ensure_epoch()
touch(tonumber(ARGV[2]))
return {epoch, tonumber(redis.call('GET', KEYS[2]))}
"""
)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _client_name(text: str) -> str:
    return re.sub(r"[^\w.:-]", "_", text)


def _stream_seq(entry_id: bytes | str) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.partition("-")[0])


class RedisBus(Bus):
    """The bus for several instances behind a load balancer.

    ``ttl_seconds`` lets idle topics (a finished room's signaling) expire from Redis; a topic
    that expires simply starts a new epoch when next used. ``None`` keeps topics forever.
    """

    def __init__(
        self,
        url: str,
        history_size: int = DEFAULT_HISTORY_SIZE,
        instance_id: str | None = None,
        key_prefix: str = "center:",
        *,
        ttl_seconds: float | None = 7 * 24 * 3600,
    ) -> None:
        super().__init__(history_size=history_size, instance_id=instance_id)
        self._url = url
        self._prefix = f"{key_prefix}bus:"
        self._ttl_ms = int(ttl_seconds * 1000) if ttl_seconds else 0
        self._redis: aioredis.Redis | None = None
        self._sub_redis: aioredis.Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._seen: OrderedDict[str, tuple[str, int]] = OrderedDict()

    @property
    def subscribed(self) -> bool:
        """Whether the reader currently holds its pub/sub subscription."""
        return self._subscribed.is_set()

    def _keys(self, topic: str) -> list[str]:
        p = self._prefix
        return [f"{p}epoch:{topic}", f"{p}seq:{topic}", f"{p}stream:{topic}"]

    # -- lifecycle -----------------------------------------------------------------------

    async def _start(self) -> None:
        name = _client_name(self.instance_id)
        self._redis = aioredis.Redis.from_url(
            self._url,
            client_name=f"center-bus:{name}",
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            socket_keepalive=True,
        )
        # No retries inside redis-py on the subscriber: it would silently resubscribe and
        # hide the outage from the reader, which must replay what was missed.
        self._sub_redis = aioredis.Redis.from_url(
            self._url,
            client_name=f"center-bus-sub:{name}",
            socket_connect_timeout=2.0,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._publish_script = self._redis.register_script(_PUBLISH_LUA)
        self._position_script = self._redis.register_script(_POSITION_LUA)
        self._reader = asyncio.create_task(
            self._read_loop(), name=f"RedisBus({self.instance_id}) reader"
        )
        # Wait for the first attempt so that a healthy start delivers from the first publish;
        # an unreachable Redis does not stop the center from starting (the reader keeps trying).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), _START_TIMEOUT)

    async def _close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
            self._reader = None
        self._subscribed.clear()
        for client in (self._sub_redis, self._redis):
            if client is not None:
                try:
                    await client.aclose()
                except Exception:
                    _LOGGER.debug("%r: error closing a Redis client", self, exc_info=True)
        self._redis = self._sub_redis = None

    # -- the interface -------------------------------------------------------------------

    async def ping(self) -> bool:
        if self._redis is None or self.state != "running":
            return False
        try:
            return bool(await cast("Awaitable[bool]", self._redis.ping()))
        except Exception:
            return False

    async def publish(self, topic: str, type: str, data: Mapping[str, Any]) -> BusMessage:
        self._check_running("publish")
        at = time.time()
        body = json.dumps(
            {
                "topic": topic,
                "type": type,
                "data": dict(data),
                "origin": self.instance_id,
                "at": at,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        args: list[str | int] = [
            new_epoch(),
            self._ttl_ms,
            self.history_size,
            self._prefix + "msg:" + topic,
            body,
        ]
        try:
            epoch, seq = await self._publish_script(keys=self._keys(topic), args=args)
        except _UNAVAILABLE as exc:
            raise BusUnavailableError(f"cannot publish {type} on {topic}: {exc}") from exc
        self.metrics.published += 1
        decoded = json.loads(body)["data"]
        return BusMessage(topic, type, decoded, self.instance_id, int(seq), epoch.decode(), at)

    async def history(self, topic: str, after_seq: int, epoch: str) -> list[BusMessage] | None:
        self._check_running("read history")
        assert self._redis is not None
        epoch_key, seq_key, stream_key = self._keys(topic)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(epoch_key)
                pipe.get(seq_key)
                pipe.xrange(stream_key, f"{max(after_seq, 0) + 1}-0", "+", self.history_size)
                current, last_raw, entries = await pipe.execute()
        except _UNAVAILABLE as exc:
            raise BusUnavailableError(f"cannot read history of {topic}: {exc}") from exc
        if current is None or last_raw is None or current.decode() != epoch:
            return None
        last = int(last_raw)
        if after_seq < 0 or after_seq > last:
            return None
        if after_seq == last:
            return []
        # MAXLEN ~ keeps a little more than asked; the bound we promise is exact.
        if last - after_seq > self.history_size:
            return None
        if not entries or _stream_seq(entries[0][0]) != after_seq + 1:
            return None
        messages = self._decode_entries(entries)
        if len(messages) != last - after_seq:
            return None
        return messages

    async def position(self, topic: str) -> tuple[str, int]:
        self._check_running("read position")
        try:
            epoch, seq = await self._position_script(
                keys=self._keys(topic), args=[new_epoch(), self._ttl_ms]
            )
        except _UNAVAILABLE as exc:
            raise BusUnavailableError(f"cannot read position of {topic}: {exc}") from exc
        return epoch.decode(), int(seq)

    # -- the reader ----------------------------------------------------------------------

    def _decode_entries(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[BusMessage]:
        messages = []
        for entry_id, fields in entries:
            try:
                messages.append(BusMessage.from_json(fields[b"m"]))
            except (KeyError, ValueError):
                self.metrics.errors += 1
                _LOGGER.warning("%r: undecodable stream entry %r", self, entry_id)
        return messages

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        delay = _BACKOFF_MIN
        down_since: float | None = None
        assert self._sub_redis is not None
        while True:
            pubsub = self._sub_redis.pubsub()
            try:
                await self._subscribe(pubsub)
                await self._backfill()
                if down_since is not None:
                    _LOGGER.info(
                        "%r: Redis subscription restored after %.1f s",
                        self,
                        loop.time() - down_since,
                    )
                down_since = None
                delay = _BACKOFF_MIN
                self._subscribed.set()
                self._attempted.set()
                await self._pump(pubsub)
            except _UNAVAILABLE as exc:
                self._subscribed.clear()
                self._attempted.set()
                if down_since is None:
                    down_since = loop.time()
                    _LOGGER.warning("%r: Redis unreachable (%s); retrying with backoff", self, exc)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    _LOGGER.debug("%r: error closing pub/sub", self, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _subscribe(self, pubsub: PubSub) -> None:
        await pubsub.psubscribe(_glob_escape(self._prefix) + "msg:*")
        deadline = asyncio.get_running_loop().time() + _KEEPALIVE
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise RedisTimeoutError("no PSUBSCRIBE confirmation")
            reply = await pubsub.get_message(timeout=remaining)
            if reply is not None and reply["type"] == "psubscribe":
                return

    async def _pump(self, pubsub: PubSub) -> None:
        silent = 0
        while True:
            reply = await pubsub.get_message(timeout=_KEEPALIVE)
            if reply is None:
                silent += 1
                if silent >= 2:
                    raise RedisTimeoutError("no reply to PING on the pub/sub connection")
                await pubsub.ping()
                continue
            silent = 0
            if reply["type"] != "pmessage":
                continue
            try:
                msg = BusMessage.from_json(reply["data"])
            except ValueError:
                self.metrics.errors += 1
                _LOGGER.warning("%r: undecodable message on %r", self, reply["channel"])
                continue
            self._deliver(msg)

    async def _backfill(self) -> None:
        """Replay from the streams what local subscribers missed while unsubscribed.

        Runs after the new subscription is confirmed and before its first message is read,
        so the stream covers everything up to where pub/sub resumes; :meth:`_deliver` drops
        the overlap.
        """
        assert self._redis is not None
        for topic, (epoch, seq) in list(self._seen.items()):
            if not self.has_subscribers(topic):
                continue
            epoch_key, _, stream_key = self._keys(topic)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(epoch_key)
                pipe.xrange(stream_key, f"{seq + 1}-0", "+", self.history_size)
                current, entries = await pipe.execute()
            if current is None or current.decode() != epoch:
                continue
            for msg in self._decode_entries(entries):
                self._deliver(msg)

    def _deliver(self, msg: BusMessage) -> None:
        seen = self._seen.get(msg.topic)
        if seen is not None and seen[0] == msg.epoch and msg.seq <= seen[1]:
            return
        self._seen[msg.topic] = (msg.epoch, msg.seq)
        self._seen.move_to_end(msg.topic)
        if len(self._seen) > _SEEN_TOPICS_MAX:
            self._seen.popitem(last=False)
        self._dispatch(msg)
