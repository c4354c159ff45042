"""The contract every bus keeps, run against LocalBus and a real Redis.

Redis tests use ``CENTER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``), a fresh key
prefix per test, and skip when Redis is unreachable — except under ``CI=true``, where an
unreachable Redis fails them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from center.bus import Bus, BusMessage, BusStateError, BusUnavailableError
from center.bus_local import LocalBus
from center.bus_redis import RedisBus

REDIS_URL = os.environ.get("CENTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TIMEOUT = 5.0

BusFactory = Callable[..., Awaitable[Bus]]


class Collector:
    """A handler that records messages and lets a test wait for a count, never for a time."""

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []
        self._changed = asyncio.Event()

    def __call__(self, msg: BusMessage) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[BusMessage]], bool]) -> None:
        async def _wait() -> None:
            while not predicate(self.messages):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), TIMEOUT)

    async def wait_count(self, count: int) -> None:
        await self.wait_for(lambda msgs: len(msgs) >= count)

    async def wait_type(self, type: str) -> None:
        await self.wait_for(lambda msgs: any(m.type == type for m in msgs))

    @property
    def seqs(self) -> list[int]:
        return [m.seq for m in self.messages]

    @property
    def types(self) -> list[str]:
        return [m.type for m in self.messages]


@functools.cache
def _redis_problem() -> str | None:
    """Why Redis cannot be used, probed once per session; ``None`` when it can."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"Redis unreachable at {REDIS_URL} (set CENTER_TEST_REDIS_URL): {exc}"
    return None


@pytest.fixture
def redis_url() -> str:
    problem = _redis_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    return f"test:bus:{uuid.uuid4().hex}:"


@pytest.fixture
def redis_cleanup(redis_url: str, key_prefix: str) -> Iterator[None]:
    """Deletes the test's keys afterwards."""
    yield
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str, redis_cleanup: None) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("redis_cleanup")
    return str(request.param)


@pytest.fixture
async def make_bus(bus_kind: str, key_prefix: str) -> AsyncIterator[BusFactory]:
    """Makes started buses of the parametrized kind (Redis ones share one prefix) and closes
    them after the test."""
    buses: list[Bus] = []

    async def factory(**kwargs: Any) -> Bus:
        bus: Bus
        if bus_kind == "local":
            bus = LocalBus(**kwargs)
        else:
            bus = RedisBus(REDIS_URL, key_prefix=key_prefix, **kwargs)
        buses.append(bus)
        await bus.start()
        return bus

    try:
        yield factory
    finally:
        for bus in buses:
            await bus.close()


@pytest.fixture
async def bus(make_bus: BusFactory) -> Bus:
    return await make_bus()


@pytest.fixture
async def redis_pair(
    redis_url: str, redis_cleanup: None, key_prefix: str
) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    a = RedisBus(redis_url, key_prefix=key_prefix, instance_id="A")
    b = RedisBus(redis_url, key_prefix=key_prefix, instance_id="B")
    try:
        await a.start()
        await b.start()
        assert a.subscribed and b.subscribed
        yield a, b
    finally:
        await a.close()
        await b.close()


# -- contract: both implementations ----------------------------------------------------------


async def test_publish_delivers_in_order(bus: Bus) -> None:
    got = Collector()
    bus.subscribe("alarms", got)
    published = [await bus.publish("alarms", "alarm.raised", {"n": i}) for i in range(50)]
    await got.wait_count(50)
    assert got.messages == published
    assert got.seqs == list(range(1, 51))
    epoch, last = await bus.position("alarms")
    first = got.messages[0]
    assert (first.topic, first.type, first.data, first.origin) == (
        "alarms",
        "alarm.raised",
        {"n": 0},
        bus.instance_id,
    )
    assert {m.epoch for m in got.messages} == {epoch}
    assert last == 50
    assert bus.metrics.published == 50 and bus.published == 50
    assert bus.metrics.delivered == 50 and bus.errors == 0


async def test_data_is_what_json_gives(bus: Bus) -> None:
    got = Collector()
    bus.subscribe("visits", got)
    msg = await bus.publish("visits", "visit.updated", {"ids": (1, 2), "名": "张*三", "n": None})
    await got.wait_count(1)
    assert msg.data == got.messages[0].data == {"ids": [1, 2], "名": "张*三", "n": None}
    with pytest.raises(TypeError):
        await bus.publish("visits", "visit.updated", {"bad": object()})


async def test_wildcard_patterns(bus: Bus) -> None:
    everything, alarms_any, alarms_exact, rooms = Collector(), Collector(), Collector(), Collector()
    bus.subscribe("*", everything)
    bus.subscribe("alarm*", alarms_any)
    bus.subscribe("alarms", alarms_exact)
    bus.subscribe("room:*", rooms)
    for topic in ("alarms", "alarm:district:4403", "visits", "room:1", "alarms"):
        await bus.publish(topic, "t", {})
    await bus.publish("zz-end", "end", {})
    await everything.wait_type("end")
    # One reader (or synchronous delivery) dispatches in publish order, so once "*" has seen
    # the last message every handler has had its chance at the earlier ones.
    topics = [m.topic for m in everything.messages]
    assert topics == ["alarms", "alarm:district:4403", "visits", "room:1", "alarms", "zz-end"]
    assert [m.topic for m in alarms_any.messages] == ["alarms", "alarm:district:4403", "alarms"]
    assert [m.topic for m in alarms_exact.messages] == ["alarms", "alarms"]
    assert [m.topic for m in rooms.messages] == ["room:1"]


@pytest.mark.parametrize("pattern", ["", "a*b", "*alarms", "**"])
async def test_bad_patterns_are_refused(bus: Bus, pattern: str) -> None:
    with pytest.raises(ValueError):
        bus.subscribe(pattern, Collector())


async def test_async_handler_is_refused(bus: Bus) -> None:
    async def handler(msg: BusMessage) -> None:
        pass

    with pytest.raises(TypeError):
        bus.subscribe("alarms", handler)  # type: ignore[arg-type]


async def test_unsubscribe_stops_delivery_and_is_idempotent(bus: Bus) -> None:
    stays, leaves = Collector(), Collector()
    bus.subscribe("duty", stays)
    unsubscribe = bus.subscribe("duty", leaves)
    unsubscribe_star = bus.subscribe("*", leaves)
    await bus.publish("duty", "first", {})
    await stays.wait_type("first")
    unsubscribe()
    unsubscribe()
    unsubscribe_star()
    unsubscribe_star()
    await bus.publish("duty", "second", {})
    await stays.wait_type("second")
    assert stays.types == ["first", "second"]
    assert leaves.types == ["first", "first"]
    assert not bus.has_subscribers("other")


async def test_unsubscribe_from_inside_a_handler(bus: Bus) -> None:
    once = Collector()
    later = Collector()

    def handler(msg: BusMessage) -> None:
        once(msg)
        unsubscribe()

    unsubscribe = bus.subscribe("duty", handler)
    bus.subscribe("duty", later)
    await bus.publish("duty", "a", {})
    await bus.publish("duty", "b", {})
    await later.wait_type("b")
    assert once.types == ["a"]


async def test_handler_exception_does_not_break_delivery(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    before, after = Collector(), Collector()

    def broken(msg: BusMessage) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe("alarms", before)
    bus.subscribe("alarms", broken)
    bus.subscribe("alarm*", after)
    with caplog.at_level(logging.ERROR, logger="center.bus"):
        await bus.publish("alarms", "a", {})
        await bus.publish("alarms", "b", {})
        await after.wait_type("b")
    assert before.types == after.types == ["a", "b"]
    assert bus.metrics.errors == 2
    assert bus.metrics.delivered == 4
    failures = [r for r in caplog.records if r.exc_info and "handler bug" in str(r.exc_info[1])]
    assert len(failures) == 2


async def test_history_replays_after_a_seq(bus: Bus) -> None:
    msgs = [await bus.publish("alarms", "alarm.raised", {"n": i}) for i in range(10)]
    assert [m.seq for m in msgs] == list(range(1, 11))
    epoch = msgs[0].epoch
    assert all(m.epoch == epoch for m in msgs)
    replay = await bus.history("alarms", 4, epoch)
    assert replay is not None
    assert [m.seq for m in replay] == list(range(5, 11))
    assert [m.data for m in replay] == [{"n": i} for i in range(4, 10)]
    assert replay == msgs[4:]
    assert await bus.history("alarms", 10, epoch) == []
    full = await bus.history("alarms", 0, epoch)
    assert full is not None and len(full) == 10
    # Topics are independent streams.
    other = await bus.publish("visits", "visit.updated", {})
    assert other.seq == 1
    assert await bus.history("visits", 0, other.epoch) == [other]


async def test_history_refuses_what_it_cannot_replay(make_bus: BusFactory) -> None:
    bus = await make_bus(history_size=5)
    msgs = [await bus.publish("alarms", "t", {"n": i}) for i in range(12)]
    epoch = msgs[-1].epoch
    replay = await bus.history("alarms", 7, epoch)
    assert replay is not None and [m.seq for m in replay] == [8, 9, 10, 11, 12]
    assert await bus.history("alarms", 6, epoch) is None
    assert await bus.history("alarms", 0, epoch) is None
    assert await bus.history("alarms", 12, "not-the-epoch") is None
    assert await bus.history("alarms", 13, epoch) is None
    assert await bus.history("alarms", -1, epoch) is None
    assert await bus.history("never-used", 0, "whatever") is None


async def test_position(bus: Bus) -> None:
    epoch, seq = await bus.position("duty")
    assert seq == 0 and epoch
    assert await bus.position("duty") == (epoch, 0)
    assert await bus.history("duty", 0, epoch) == []
    for _ in range(3):
        msg = await bus.publish("duty", "shift.changed", {})
    assert await bus.position("duty") == (msg.epoch, 3)
    assert msg.epoch == epoch


async def test_close_is_idempotent_and_leaves_no_tasks(make_bus: BusFactory) -> None:
    before = asyncio.all_tasks()
    bus = await make_bus()
    got = Collector()
    bus.subscribe("*", got)
    await bus.publish("alarms", "t", {})
    await got.wait_count(1)
    assert await bus.ping() is True
    await bus.close()
    await bus.close()
    await asyncio.gather(bus.close(), bus.close())
    assert asyncio.all_tasks() <= before
    assert await bus.ping() is False
    assert bus.state == "closed"
    with pytest.raises(BusStateError):
        await bus.publish("alarms", "t", {})
    with pytest.raises(BusStateError):
        await bus.history("alarms", 0, "e")
    with pytest.raises(BusStateError):
        await bus.position("alarms")
    with pytest.raises(BusStateError):
        await bus.start()
    assert await bus.notify("alarms", "t", {}) is None


async def test_concurrent_close_waits_for_the_first(make_bus: BusFactory) -> None:
    before = asyncio.all_tasks()
    bus = await make_bus()
    await asyncio.gather(*(bus.close() for _ in range(5)))
    assert asyncio.all_tasks() <= before


async def test_use_before_start_is_refused_but_subscribe_works() -> None:
    bus = LocalBus()
    got = Collector()
    bus.subscribe("alarms", got)
    with pytest.raises(BusStateError):
        await bus.publish("alarms", "t", {})
    assert await bus.ping() is False
    await bus.start()
    await bus.publish("alarms", "t", {})
    assert got.seqs == [1]
    await bus.close()


def test_history_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LocalBus(history_size=0)
    with pytest.raises(ValueError):
        RedisBus("redis://127.0.0.1:1/0", history_size=0)


# -- Redis only -------------------------------------------------------------------------------


@pytest.mark.redis
async def test_message_reaches_other_instance_exactly_once(
    redis_pair: tuple[RedisBus, RedisBus],
) -> None:
    a, b = redis_pair
    on_a, on_b = Collector(), Collector()
    a.subscribe("alarms", on_a)
    b.subscribe("alarm*", on_b)
    sent = await a.publish("alarms", "alarm.raised", {"id": 7})
    # A second message behind the first proves nothing else of the first is still coming.
    await a.publish("alarms", "end", {})
    await on_a.wait_type("end")
    await on_b.wait_type("end")
    assert on_a.messages == on_b.messages
    assert on_b.messages[0] == sent
    assert on_b.seqs == [1, 2]
    assert sent.origin == "A"
    assert await b.history("alarms", 0, sent.epoch) == on_b.messages
    assert b.metrics.published == 0 and b.metrics.delivered == 2


@pytest.mark.redis
async def test_concurrent_publishes_get_unique_increasing_seqs(
    redis_pair: tuple[RedisBus, RedisBus],
) -> None:
    a, b = redis_pair
    on_a, on_b = Collector(), Collector()
    a.subscribe("alarms", on_a)
    b.subscribe("alarms", on_b)
    sent = await asyncio.gather(
        *(
            bus.publish("alarms", "t", {"from": bus.instance_id})
            for _ in range(50)
            for bus in (a, b)
        )
    )
    assert sorted(m.seq for m in sent) == list(range(1, 101))
    await on_a.wait_count(100)
    await on_b.wait_count(100)
    assert on_a.seqs == on_b.seqs == list(range(1, 101))
    assert {m.origin for m in on_a.messages} == {"A", "B"}
    replay = await a.history("alarms", 0, sent[0].epoch)
    assert replay == on_a.messages


@pytest.mark.redis
async def test_epoch_is_shared_across_instances(redis_pair: tuple[RedisBus, RedisBus]) -> None:
    a, b = redis_pair
    pos_a, pos_b = await asyncio.gather(a.position("duty"), b.position("duty"))
    assert pos_a == pos_b
    msg = await b.publish("duty", "t", {})
    assert msg.epoch == pos_a[0]
    assert await a.position("duty") == (pos_a[0], 1)


@pytest.mark.redis
async def test_lost_topic_starts_a_new_epoch(
    redis_pair: tuple[RedisBus, RedisBus], redis_client: aioredis.Redis, key_prefix: str
) -> None:
    a, b = redis_pair
    old = await a.publish("duty", "t", {})
    await redis_client.delete(f"{key_prefix}bus:epoch:duty")
    new = await b.publish("duty", "t", {})
    assert new.epoch != old.epoch and new.seq == 1
    assert await a.history("duty", old.seq, old.epoch) is None
    assert await a.history("duty", 0, new.epoch) == [new]
    assert await a.position("duty") == (new.epoch, 1)


@pytest.mark.redis
async def test_subscriber_recovers_messages_after_losing_its_connection(
    redis_pair: tuple[RedisBus, RedisBus], redis_client: aioredis.Redis
) -> None:
    a, b = redis_pair
    on_b = Collector()
    b.subscribe("alarms", on_b)
    await a.publish("alarms", "t", {"n": 0})
    await on_b.wait_count(1)
    clients = await redis_client.client_list()
    (victim,) = [c["id"] for c in clients if c.get("name") == "center-bus-sub:B"]
    await redis_client.client_kill_filter(_id=victim)
    for n in range(1, 6):
        await a.publish("alarms", "t", {"n": n})
    await on_b.wait_count(6)
    await a.publish("alarms", "end", {})
    await on_b.wait_type("end")
    assert on_b.seqs == list(range(1, 8))
    assert [m.data.get("n") for m in on_b.messages[:6]] == list(range(6))


@pytest.mark.redis
async def test_instance_ids_are_distinct_by_default(redis_url: str, key_prefix: str) -> None:
    one = RedisBus(redis_url, key_prefix=key_prefix)
    two = RedisBus(redis_url, key_prefix=key_prefix)
    assert one.instance_id != two.instance_id


async def test_unreachable_redis_degrades_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = asyncio.all_tasks()
    bus = RedisBus("redis://127.0.0.1:1/0", key_prefix=f"test:bus:{uuid.uuid4().hex}:")
    with caplog.at_level(logging.WARNING, logger="center.bus_redis"):
        await bus.start()
    assert await bus.ping() is False
    assert not bus.subscribed
    with pytest.raises(BusUnavailableError):
        await bus.publish("alarms", "t", {})
    with pytest.raises(BusUnavailableError):
        await bus.position("alarms")
    with pytest.raises(BusUnavailableError):
        await bus.history("alarms", 0, "e")
    assert await bus.notify("alarms", "t", {}) is None
    await bus.close()
    assert asyncio.all_tasks() <= before
    assert any("unreachable" in r.getMessage() for r in caplog.records)
