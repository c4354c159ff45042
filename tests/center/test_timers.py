"""Durable timers: fire once, after restarts and with two instances on one database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from center.clock import FakeClock
from center.db import create_engine, create_sessionmaker
from center.tasks import TaskSupervisor
from center.timers import FiredTimer, Timer, TimerService, TimerState
from tests.alerts.helpers import eventually


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    async with eng.begin() as conn:
        await conn.run_sync(lambda c: Timer.metadata.create_all(c, tables=[Timer.__table__]))  # type: ignore[list-item]
    try:
        yield eng
    finally:
        await eng.dispose()


def recorder(calls: Counter[str], after: list[str] | None = None) -> Any:
    async def handler(session: AsyncSession, timer: FiredTimer) -> Any:
        calls[timer.key] += 1
        if after is None:
            return None

        async def announce() -> None:
            after.append(timer.key)

        return announce

    return handler


async def test_schedule_is_idempotent_and_fires_once(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    sm = create_sessionmaker(engine)
    svc = TimerService(sm, fake_clock)
    calls: Counter[str] = Counter()
    after: list[str] = []
    svc.register("t", recorder(calls, after))
    async with sm() as s:
        assert await svc.schedule(
            s, kind="t", key="a", due_at=fake_clock.now() + timedelta(minutes=5), payload={"x": 1}
        )
        assert not await svc.schedule(
            s, kind="t", key="a", due_at=fake_clock.now() + timedelta(minutes=1)
        )
        await s.commit()
    assert await svc.fire_due() == 0
    await fake_clock.advance(minutes=5)
    assert await svc.fire_due() == 1
    assert await svc.fire_due() == 0
    assert calls == {"a": 1} and after == ["a"]
    async with sm() as s:
        row = (await s.execute(select(Timer))).scalar_one()
    assert row.state == TimerState.FIRED and row.version == 2 and row.payload == {"x": 1}
    assert row.fired_at == fake_clock.now()


async def test_cancel_by_key_and_ref(engine: AsyncEngine, fake_clock: FakeClock) -> None:
    sm = create_sessionmaker(engine)
    svc = TimerService(sm, fake_clock)
    calls: Counter[str] = Counter()
    svc.register("ack", recorder(calls))
    svc.register("loop", recorder(calls))
    due = fake_clock.now() + timedelta(seconds=10)
    async with sm() as s:
        for key, kind, ref in (
            ("ack:1", "ack", "alarm:1"),
            ("loop:1", "loop", "alarm:1"),
            ("ack:2", "ack", "alarm:2"),
            ("x", "ack", ""),
        ):
            await svc.schedule(s, kind=kind, key=key, ref=ref, due_at=due)
        await s.commit()
    async with sm() as s:
        assert await svc.cancel(s, ref="alarm:1", kind="ack") == 1
        assert await svc.cancel(s, key="x") == 1
        assert await svc.cancel(s, key="x") == 0
        await s.commit()
    await fake_clock.advance(10)
    assert await svc.fire_due() == 2
    assert calls == {"loop:1": 1, "ack:2": 1}


async def test_failing_handler_rolls_back_and_retries(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    sm = create_sessionmaker(engine)
    svc = TimerService(sm, fake_clock, retry_s=60)
    attempts: list[int] = []

    async def flaky(session: AsyncSession, timer: FiredTimer) -> None:
        attempts.append(timer.id)
        if len(attempts) == 1:
            raise RuntimeError("boom")

    svc.register("t", flaky)
    async with sm() as s:
        await svc.schedule(s, kind="t", key="k", due_at=fake_clock.now())
        await s.commit()
    assert await svc.fire_due() == 0 and svc.failures == 1
    async with sm() as s:
        row = (await s.execute(select(Timer))).scalar_one()
        assert row.state == TimerState.PENDING and row.attempts == 1
        assert row.due_at == fake_clock.now() + timedelta(seconds=60)
    await fake_clock.advance(59)
    assert await svc.fire_due() == 0
    await fake_clock.advance(1)
    assert await svc.fire_due() == 1 and len(attempts) == 2


async def test_loop_wakes_early_for_a_sooner_timer(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    sm = create_sessionmaker(engine)
    svc = TimerService(sm, fake_clock, poll_s=3600)
    calls: Counter[str] = Counter()
    svc.register("t", recorder(calls))
    tasks = TaskSupervisor()
    tasks.spawn("timers", svc.run())
    try:
        await eventually(lambda: fake_clock.sleepers == 1)
        async with sm() as s:
            await svc.schedule(
                s, kind="t", key="soon", due_at=fake_clock.now() + timedelta(seconds=30)
            )
            await s.commit()
        # The loop re-reads the next due time and goes back to sleep until then (not 1 h).
        await eventually(
            lambda: (
                fake_clock.sleepers == 1
                and svc._wake_target is not None
                and svc._wake_target < fake_clock.now() + timedelta(minutes=1)
            )
        )
        await fake_clock.advance(30)
        await eventually(lambda: calls["soon"] == 1)
    finally:
        await tasks.close()


async def test_fires_once_across_a_restart(engine: AsyncEngine, fake_clock: FakeClock) -> None:
    sm = create_sessionmaker(engine)
    calls: Counter[str] = Counter()
    first = TimerService(sm, fake_clock)
    first.register("t", recorder(calls))
    async with sm() as s:
        for i in range(5):
            await first.schedule(
                s, kind="t", key=f"k{i}", due_at=fake_clock.now() + timedelta(minutes=i + 1)
            )
        await s.commit()
    tasks = TaskSupervisor()
    tasks.spawn("timers", first.run())
    await fake_clock.advance(minutes=2)
    await eventually(lambda: calls["k1"] == 1)
    await tasks.close()  # the "crash": k2..k4 are still pending
    await fake_clock.advance(hours=1)  # downtime; all are overdue now
    second = TimerService(sm, fake_clock)
    second.register("t", recorder(calls))
    tasks = TaskSupervisor()
    tasks.spawn("timers", second.run())
    try:
        await eventually(lambda: sum(calls.values()) == 5)
        await fake_clock.advance(hours=1)
        await asyncio.sleep(0.05)
        assert calls == {f"k{i}": 1 for i in range(5)}
    finally:
        await tasks.close()


async def test_two_instances_fire_each_timer_once(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    calls: Counter[str] = Counter()
    services = []
    for _ in range(2):
        # Separate engines: two instances share nothing but the database.
        eng = create_engine(str(engine.url.render_as_string(hide_password=False)))
        svc = TimerService(create_sessionmaker(eng), fake_clock, poll_s=5)
        svc.register("t", recorder(calls))
        services.append((eng, svc))
    sm = create_sessionmaker(engine)
    async with sm() as s:
        for i in range(40):
            await services[i % 2][1].schedule(
                s, kind="t", key=f"k{i}", due_at=fake_clock.now() + timedelta(seconds=i % 7)
            )
        await s.commit()
    tasks = TaskSupervisor()
    for n, (_, svc) in enumerate(services):
        tasks.spawn(f"timers-{n}", svc.run())
    try:
        await fake_clock.advance(10)
        await eventually(lambda: sum(calls.values()) >= 40)
        # And the race head-on: both claim the same due rows at once.
        async with sm() as s:
            for i in range(40, 80):
                await services[0][1].schedule(s, kind="t", key=f"k{i}", due_at=fake_clock.now())
            await s.commit()
        await asyncio.gather(services[0][1].fire_due(), services[1][1].fire_due())
        await eventually(lambda: sum(calls.values()) >= 80)
        await asyncio.sleep(0.05)
        assert calls == {f"k{i}": 1 for i in range(80)}
        assert services[0][1].fired + services[1][1].fired == 80
    finally:
        await tasks.close()
        for eng, _ in services:
            await eng.dispose()
