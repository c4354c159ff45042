"""Rooms across instances: the owner lease in Redis and ``rtc.*`` forwarded over the bus.

A room's media lives on the instance that created it, its *owner*; nothing is relayed between
instances. The owner records each of its rooms in Redis under ``<prefix>rooms:<id>`` — the
room's record (scope, invitations) and the owner's bus instance id — with a lease (``SET NX
PX``) it renews on the app clock every third of the lease. Another instance that receives
``rtc.join`` for a room it does not hold looks the room up there, checks the caller may see it
(the same rule as for its own rooms) and forwards the command to the owner as a request on the
owner's bus topic ``rtc.rpc.<owner>``; the owner answers on ``rtc.reply.<asker>`` (a
correlation id per request, a timeout on the app clock) and sends the room's events for that
participant on ``rtc.relay.<asker>``, which the asker hands to the socket as its own. The
owner's answer SDP carries the owner's own candidates, so the peer connects straight to it.

The owner's death: its lease lapses (or the record names another owner); the asking instance
checks its relayed rooms on the same period and ends their sessions with ``bye`` reason
``owner_lost``. An owner that finds its lease taken or gone ends the room with ``lease_lost``
rather than keep media nobody can reach. A request to a dead owner fails ``unavailable``.

With the in-process bus (one instance) there is no cluster: rooms stay local and this module
is not used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from center.bus import Bus, BusMessage, Unsubscribe
from center.clock import Clock
from center.errors import CenterError, Outage
from media.component import Invitee, RoomRecord
from media.policy import RoomKind

_LOGGER = logging.getLogger(__name__)

OWNER_LOST: Final = "owner_lost"
"""``bye`` reason for a relayed participant whose room's owner instance went away."""
LEASE_LOST: Final = "lease_lost"
"""``bye`` reason the owner gives when it finds its lease on the room gone."""

_RENEW_LUA: Final = """
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) == 1 then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA: Final = """
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) == 1 then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class OwnerUnavailable(Outage):
    """The room's owner instance did not answer in time (it may have died)."""

    public_message = "the instance holding this room does not answer; retry shortly"


class DirectoryUnavailable(Outage):
    """Redis could not record the room's owner: the room is not opened."""

    public_message = "the room directory (Redis) is unavailable; retry shortly"


def record_to_json(rec: RoomRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "kind": str(rec.kind),
        "jurisdiction": list(rec.jurisdiction),
        "created_by": rec.created_by,
        "created_by_actor": rec.created_by_actor,
        "created_at": rec.created_at.isoformat(),
        "record": rec.record,
        "parties": [[i.principal, i.name] for i in rec.parties],
        "monitors": [[i.principal, i.name] for i in rec.monitors],
    }


def record_from_json(data: dict[str, Any]) -> RoomRecord:
    return RoomRecord(
        id=data["id"],
        kind=RoomKind(data["kind"]),
        jurisdiction=tuple(data["jurisdiction"]),
        created_by=data["created_by"],
        created_by_actor=data["created_by_actor"],
        created_at=datetime.fromisoformat(data["created_at"]),
        record=bool(data["record"]),
        parties=tuple(Invitee(p, n) for p, n in data["parties"]),
        monitors=tuple(Invitee(p, n) for p, n in data["monitors"]),
    )


@dataclass(frozen=True, slots=True)
class RemoteRoom:
    """A room another instance owns, as the directory holds it."""

    owner: str
    record: RoomRecord


RelayTarget = Callable[[dict[str, Any]], None]
"""Receives the owner's events for one relayed session (synchronous, like a room callback)."""
Operation = Callable[[dict[str, Any], RelayTarget], Awaitable[Any]]
"""The owner's side of one forwarded command: its args and where the session's events go."""


class RoomCluster:
    """This instance's part in the cluster: owner of its rooms, forwarder for the others."""

    def __init__(
        self,
        bus: Bus,
        redis_url: str,
        *,
        key_prefix: str,
        clock: Clock,
        spawn: Callable[[str, Any], Any],
        lease_s: float,
        request_timeout_s: float = 15.0,
    ) -> None:
        self.bus = bus
        self.me = bus.instance_id
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self._prefix = f"{key_prefix}rooms:"
        self._clock = clock
        self._spawn = spawn
        self.lease_s = lease_s
        self.request_timeout_s = request_timeout_s
        self.owned: dict[str, str] = {}
        """room id -> the lease value this instance wrote."""
        self.operations: dict[str, Operation] = {}
        self.relays: dict[str, tuple[str, str, RelayTarget]] = {}
        """relay session id -> (owner, room id, where its events go) on the asking side."""
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._outbox: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
        self._unsubscribe: list[Unsubscribe] = []
        self.on_lease_lost: Callable[[str], Awaitable[None]] | None = None
        self.still_open: Callable[[str], bool] = lambda _room_id: True

    def __repr__(self) -> str:
        return f"RoomCluster({self.me}, {len(self.owned)} owned, {len(self.relays)} relayed)"

    @property
    def period_s(self) -> float:
        return self.lease_s / 3

    def _key(self, room_id: str) -> str:
        return self._prefix + room_id

    def start(self) -> None:
        self._unsubscribe = [
            self.bus.subscribe(f"rtc.rpc.{self.me}", self._on_request),
            self.bus.subscribe(f"rtc.reply.{self.me}", self._on_reply),
            self.bus.subscribe(f"rtc.relay.{self.me}", self._on_relay),
        ]

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for room_id in list(self.owned):
            await self.release(room_id)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(OwnerUnavailable("shutting down"))
        await self._redis.aclose()

    # The directory ----------------------------------------------------------------------

    async def claim(self, rec: RoomRecord) -> None:
        """Record a room this instance just opened; its id is fresh, so NX must win."""
        value = json.dumps({"owner": self.me, "record": record_to_json(rec)})
        value = f"{self.me} {value}"
        try:
            ok = await self._redis.set(
                self._key(rec.id), value, nx=True, px=int(self.lease_s * 1000)
            )
        except (RedisError, OSError) as exc:
            raise DirectoryUnavailable(f"cannot record room {rec.id}: {exc}") from exc
        if not ok:
            raise CenterError(f"room {rec.id} is already held", code="conflict", status=409)
        self.owned[rec.id] = value

    async def release(self, room_id: str) -> None:
        if self.owned.pop(room_id, None) is None:
            return
        try:
            await cast(
                "Awaitable[Any]",
                self._redis.eval(_RELEASE_LUA, 1, self._key(room_id), self.me + " "),
            )
        except Exception:
            _LOGGER.warning("could not release the lease of room %s", room_id, exc_info=True)

    async def lookup(self, room_id: str) -> RemoteRoom | None:
        """The room's owner and record when another instance holds it; else ``None``."""
        try:
            raw = await self._redis.get(self._key(room_id))
        except Exception:
            _LOGGER.warning("room directory unreachable", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw.decode().partition(" ")[2])
            if data["owner"] == self.me:
                return None
            return RemoteRoom(str(data["owner"]), record_from_json(data["record"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            _LOGGER.warning("room directory: undecodable entry for room %s", room_id)
            return None

    async def _owner_of(self, room_id: str) -> str | None:
        raw = await self._redis.get(self._key(room_id))
        return None if raw is None else raw.decode().partition(" ")[0]

    async def run(self) -> None:
        """Every third of the lease on the app clock: renew owned leases, check relayed owners."""
        while True:
            try:
                await self._renew()
                await self._check_relays()
            except Exception:
                _LOGGER.warning("room leases: Redis unreachable; retrying", exc_info=True)
            await self._clock.sleep(self.period_s)

    async def _renew(self) -> None:
        for room_id in list(self.owned):
            if not self.still_open(room_id):
                await self.release(room_id)
                continue
            renewed = await cast(
                "Awaitable[int]",
                self._redis.eval(
                    _RENEW_LUA, 1, self._key(room_id), self.me + " ", int(self.lease_s * 1000)
                ),
            )
            if not renewed and room_id in self.owned:
                _LOGGER.warning("lease of room %s lost: ending it", room_id)
                self.owned.pop(room_id, None)
                if self.on_lease_lost is not None:
                    await self.on_lease_lost(room_id)

    async def _check_relays(self) -> None:
        owners: dict[str, str | None] = {}
        for sid, (owner, room_id, target) in list(self.relays.items()):
            if room_id not in owners:
                owners[room_id] = await self._owner_of(room_id)
            if owners[room_id] != owner and self.relays.pop(sid, None) is not None:
                _LOGGER.warning("room %s: owner %s is gone; ending relayed session", room_id, owner)
                target({"type": "bye", "reason": OWNER_LOST})

    # Forwarding: the asking side ----------------------------------------------------------

    def open_relay(self, owner: str, room_id: str, target: RelayTarget) -> str:
        sid = uuid.uuid4().hex
        self.relays[sid] = (owner, room_id, target)
        return sid

    def close_relay(self, sid: str) -> None:
        self.relays.pop(sid, None)

    async def request(self, owner: str, op: str, args: dict[str, Any]) -> Any:
        """Run ``op`` on ``owner`` and return its result, or raise its error; times out on
        the app clock (``unavailable``)."""
        corr = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[corr] = fut
        timer: asyncio.Future[Any] = asyncio.ensure_future(
            self._clock.sleep(self.request_timeout_s)
        )
        try:
            await self.bus.publish(
                f"rtc.rpc.{owner}",
                "request",
                {"corr": corr, "from": self.me, "op": op, "args": args},
            )
            waiters: set[asyncio.Future[Any]] = {fut, timer}
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if fut not in done:
                raise OwnerUnavailable(f"instance {owner} did not answer {op}")
            reply = fut.result()
        finally:
            self._pending.pop(corr, None)
            timer.cancel()
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise CenterError(
                str(error.get("message", "failed on the owner")),
                code=str(error.get("code", "internal")),
                status=int(error.get("status", 500)),
            )
        return reply.get("result")

    def tell_soon(self, owner: str, op: str, args: dict[str, Any]) -> None:
        """Forward ``op`` without waiting for the answer (a leave from an unsubscribe)."""
        data = {"corr": "", "from": self.me, "op": op, "args": args}
        self._outbox.put_nowait((f"rtc.rpc.{owner}", "request", data))

    def _on_reply(self, msg: BusMessage) -> None:
        fut = self._pending.get(str(msg.data.get("corr")))
        if fut is not None and not fut.done():
            fut.set_result(msg.data)

    def _on_relay(self, msg: BusMessage) -> None:
        relay = self.relays.get(str(msg.data.get("sid")))
        if relay is None:
            return
        event = msg.data["event"]
        if event.get("type") == "bye":
            self.relays.pop(str(msg.data["sid"]), None)
        relay[2](event)

    # Forwarding: the owner's side ----------------------------------------------------------

    def _on_request(self, msg: BusMessage) -> None:
        data = msg.data
        self._spawn(f"rtc-forwarded {data.get('op')}", self._serve(data))

    async def _serve(self, data: dict[str, Any]) -> None:
        asker, corr = str(data.get("from")), str(data.get("corr"))
        sid = str(data.get("args", {}).get("sid", ""))

        def relay(event: dict[str, Any]) -> None:
            self._outbox.put_nowait((f"rtc.relay.{asker}", "event", {"sid": sid, "event": event}))

        reply: dict[str, Any]
        try:
            operation = self.operations[str(data.get("op"))]
            reply = {"corr": corr, "ok": True, "result": await operation(data["args"], relay)}
        except CenterError as exc:
            error = {"code": exc.code, "status": exc.status, "message": str(exc)}
            reply = {"corr": corr, "ok": False, "error": error}
        except Exception as exc:
            _LOGGER.exception("forwarded %s failed", data.get("op"))
            error = {"code": "internal", "status": 500, "message": type(exc).__name__}
            reply = {"corr": corr, "ok": False, "error": error}
        if corr:
            self._outbox.put_nowait((f"rtc.reply.{asker}", "reply", reply))

    async def run_outbox(self) -> None:
        """Publish relayed events and replies in order (room callbacks are synchronous)."""
        while True:
            topic, type_, data = await self._outbox.get()
            try:
                await self.bus.notify(topic, type_, data)
            finally:
                self._outbox.task_done()

    async def drain(self) -> None:
        """Wait until everything queued has been published (shutdown: the last ``bye``)."""
        await self._outbox.join()
