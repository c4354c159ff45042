"""The cluster's parts on a real Redis, without apps: request/reply over the bus with the
owner's errors passed through and a timeout on the app clock; the owner lease renewed on the
clock, and lost (another owner, or gone) ends the room on the owner and the relayed sessions
on the asking instance with ``owner_lost``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from center.bus_redis import RedisBus
from center.clock import FakeClock
from center.tasks import TaskSupervisor
from media.cluster import (
    OWNER_LOST,
    DirectoryUnavailable,
    OwnerUnavailable,
    RoomCluster,
    record_from_json,
    record_to_json,
)
from media.component import Invitee, RoomRecord
from media.errors import RoomNotFoundError
from media.policy import RoomKind
from tests.conftest import REDIS_URL, need_redis
from tests.web.ws.rtc_peer import wait_for


def _record(room_id: str) -> RoomRecord:
    return RoomRecord(
        id=room_id,
        kind=RoomKind.CALL,
        jurisdiction=("4403", "440304"),
        created_by="user:3",
        created_by_actor="user:futian",
        created_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        record=True,
        parties=(Invitee("user:5", "街道一"),),
        monitors=(Invitee("user:7", "monitor"),),
    )


def test_record_survives_the_directory() -> None:
    rec = _record("r1")
    assert record_from_json(record_to_json(rec)) == rec


class _Pair:
    def __init__(self, owner: RoomCluster, asker: RoomCluster, prefix: str) -> None:
        self.owner, self.asker, self.prefix = owner, asker, prefix


@pytest.fixture
async def pair(fake_clock: FakeClock) -> AsyncIterator[_Pair]:
    need_redis()
    prefix = f"cluster-{uuid.uuid4().hex[:8]}:"
    tasks = TaskSupervisor()
    buses = [RedisBus(REDIS_URL, key_prefix=prefix) for _ in range(2)]
    clusters = []
    for bus in buses:
        await bus.start()
        cluster = RoomCluster(
            bus,
            REDIS_URL,
            key_prefix=prefix,
            clock=fake_clock,
            spawn=tasks.spawn,
            lease_s=30.0,
            request_timeout_s=5.0,
        )
        cluster.start()
        tasks.spawn("outbox", cluster.run_outbox())
        clusters.append(cluster)
    try:
        yield _Pair(clusters[0], clusters[1], prefix)
    finally:
        await tasks.close()
        for cluster in clusters:
            await cluster.close()
        for bus in buses:
            await bus.close()


async def test_request_reply_errors_and_events(pair: _Pair) -> None:
    async def echo(args: dict[str, Any], relay: Any) -> Any:
        relay({"type": "state", "state": "connected"})
        return {"got": args["x"]}

    async def missing(args: dict[str, Any], relay: Any) -> Any:
        raise RoomNotFoundError("no room r9")

    pair.owner.operations = {"echo": echo, "missing": missing}
    events: list[dict[str, Any]] = []
    sid = pair.asker.open_relay(pair.owner.me, "r1", events.append)
    assert await pair.asker.request(pair.owner.me, "echo", {"x": 1, "sid": sid}) == {"got": 1}
    # the event was sent before the reply, on the same ordered outbox
    assert events == [{"type": "state", "state": "connected"}]
    with pytest.raises(Exception) as caught:
        await pair.asker.request(pair.owner.me, "missing", {"sid": sid})
    assert getattr(caught.value, "code", None) == "room_not_found"
    assert getattr(caught.value, "status", None) == 404
    with pytest.raises(Exception) as caught:
        await pair.asker.request(pair.owner.me, "nope", {"sid": sid})
    assert getattr(caught.value, "code", None) == "internal"


async def test_a_silent_owner_times_out_on_the_clock(pair: _Pair, fake_clock: FakeClock) -> None:
    pending = asyncio.ensure_future(pair.asker.request("dead-instance", "offer", {}))
    await wait_for(lambda: fake_clock.sleepers > 0)
    assert not pending.done()
    await fake_clock.advance(5.0)
    with pytest.raises(OwnerUnavailable):
        await pending
    assert not pair.asker._pending


async def test_lease_renewed_then_lost(pair: _Pair, fake_clock: FakeClock) -> None:
    r = aioredis.Redis.from_url(REDIS_URL)
    lost: list[str] = []

    async def on_lost(room_id: str) -> None:
        lost.append(room_id)

    pair.owner.on_lease_lost = on_lost
    key = f"{pair.prefix}rooms:r1"
    try:
        await pair.owner.claim(_record("r1"))
        remote = await pair.asker.lookup("r1")
        assert remote is not None and remote.owner == pair.owner.me
        assert remote.record == _record("r1")
        assert await pair.owner.lookup("r1") is None  # its own room is not remote to it
        byes: list[dict[str, Any]] = []
        pair.asker.open_relay(pair.owner.me, "r1", byes.append)
        await r.pexpire(key, 1000)
        await pair.owner._renew()
        await pair.asker._check_relays()
        assert await r.pttl(key) > 20_000  # renewed to the lease
        assert not byes and not lost
        # another instance took the key (or it lapsed): both sides let go
        await r.set(key, "other-instance {}")
        await pair.owner._renew()
        assert lost == ["r1"] and "r1" not in pair.owner.owned
        await r.delete(key)
        await pair.asker._check_relays()
        assert byes == [{"type": "bye", "reason": OWNER_LOST}]
        assert not pair.asker.relays
    finally:
        await r.delete(key)
        await r.aclose()


async def test_release_drops_only_its_own_lease(pair: _Pair) -> None:
    r = aioredis.Redis.from_url(REDIS_URL)
    key = f"{pair.prefix}rooms:r2"
    try:
        await pair.owner.claim(_record("r2"))
        await pair.owner.release("r2")
        assert await r.exists(key) == 0
        await pair.owner.claim(_record("r2"))
        await r.set(key, "other-instance {}")
        await pair.owner.release("r2")
        assert await r.get(key) == b"other-instance {}"
    finally:
        await r.delete(key)
        await r.aclose()


async def test_a_broken_directory_entry_is_no_room(pair: _Pair) -> None:
    r = aioredis.Redis.from_url(REDIS_URL)
    key = f"{pair.prefix}rooms:r3"
    try:
        for junk in ("other-instance {}", "x not-json", "y [1, 2]"):
            await r.set(key, junk)
            assert await pair.asker.lookup("r3") is None
    finally:
        await r.delete(key)
        await r.aclose()


async def test_claim_when_redis_is_down_is_an_outage(fake_clock: FakeClock) -> None:
    need_redis()
    bus = RedisBus(REDIS_URL, key_prefix="cluster-down:")
    await bus.start()
    cluster = RoomCluster(
        bus,
        "redis://127.0.0.1:1/0",  # nothing listens there
        key_prefix="cluster-down:",
        clock=fake_clock,
        spawn=TaskSupervisor().spawn,
        lease_s=30.0,
    )
    try:
        with pytest.raises(DirectoryUnavailable) as caught:
            await cluster.claim(_record("r4"))
        assert caught.value.status == 503
        assert not cluster.owned
    finally:
        await cluster.close()
        await bus.close()
