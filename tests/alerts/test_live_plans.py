"""Live plan changes (web/admin_plans.py): a level's new plan re-plans the deadline watcher at
once on the instance that took the change and, through the bus, on the other one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from alerts.models import Alarm
from center.clock import FakeClock
from tests.conftest import REDIS_URL, AppFactory, login, need_redis
from web.keys import ALERTS, SESSIONMAKER

# 09:00 in Shanghai; the default normal plan's window (08:00-20:00) closes at 20:10 with grace
START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


async def test_a_plan_change_on_one_instance_replans_the_other(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    need_redis()
    common = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"t{uuid.uuid4().hex[:8]}:",
        "alarm_catchup_h": 0,
        "checkin_plan_strict": "mon 00:00-00:01",
        "checkin_plan_lenient": "mon 00:00-00:01",
    }
    a = await make_client(demo=True, database_url=database_url, **common)
    b = await make_client(demo=True, database_url=database_url, **common)
    normal = b.app[ALERTS].plans.index("normal")
    assert normal is not None
    old = START.replace(hour=12, minute=10)
    assert b.app[ALERTS].watcher.next_deadline_of(normal) == old

    csrf = await login(a, "admin")
    resp = await a.put(
        "/api/v1/admin/plans/normal",
        json={"spec": "daily 09:30-10:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200, await resp.text()
    new = START.replace(hour=2, minute=10)  # 10:00 Shanghai + 10 min grace
    assert datetime.fromisoformat((await resp.json())["next_deadline"]) == new
    assert a.app[ALERTS].watcher.next_deadline_of(normal) == new
    for _ in range(200):  # the bus carries it to B, which re-reads the database
        if b.app[ALERTS].watcher.next_deadline_of(normal) == new:
            break
        await asyncio.sleep(0.05)
    assert b.app[ALERTS].watcher.next_deadline_of(normal) == new
    assert b.app[ALERTS].plans.plans[normal].spec == "daily 09:30-10:00"

    # and the watcher acts on it: tonight's (here: this morning's) new window raises
    async with a.app[SESSIONMAKER]() as session:
        before = await session.scalar(
            select(func.count()).select_from(Alarm).where(Alarm.kind == "no_checkin")
        )
    await fake_clock.set(new + timedelta(seconds=1))
    await b.app[ALERTS].watcher.wait_processed(new + timedelta(seconds=1))
    await a.app[ALERTS].watcher.wait_processed(new + timedelta(seconds=1))
    async with a.app[SESSIONMAKER]() as session:
        raised = await session.scalar(
            select(func.count())
            .select_from(Alarm)
            .where(Alarm.kind == "no_checkin", Alarm.level == "normal")
        )
    assert before == 0 and raised and raised > 0

    # bad plans are a 422 that changes nothing
    resp = await a.put(
        "/api/v1/admin/plans/normal",
        json={"spec": "daily 25:00-26:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 422
    assert (await a.put("/api/v1/admin/plans/nobody", json={"spec": "daily 09:00-10:00"},
                        headers={"X-CSRF-Token": csrf})).status in (400, 404, 422)  # fmt: skip
    assert a.app[ALERTS].plans.plans[normal].spec == "daily 09:30-10:00"
