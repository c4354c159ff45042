"""Live plan changes (web/admin_plans.py): a level's new plan re-plans the deadline watcher at
once on the instance that took the change and, through the bus, on the other one."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from alerts.models import Alarm
from center.clock import FakeClock
from center.models import AuditEntry
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


async def test_a_subjects_own_plan_on_one_instance_replans_that_subject_on_the_other(
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
    d = b.app[ALERTS].directory
    sid, other = [s for i, s in enumerate(d.ids) if d.levels[i] == "normal"][:2]
    normal = b.app[ALERTS].plans.index("normal")

    csrf = await login(a, "admin")
    resp = await a.put(
        f"/api/v1/admin/subjects/{sid}/plan",
        json={"spec": "daily 09:30-10:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    new = START.replace(hour=2, minute=10)  # 10:00 Shanghai + 10 min grace
    assert body["plan"] == "daily 09:30-10:00" and body["plan_override"] is True
    assert datetime.fromisoformat(body["next_window"]["deadline"]) == new
    own = b.app[ALERTS].plans.index("subject:" + sid)
    for _ in range(200):  # the bus carries it to B, which re-reads the database
        own = b.app[ALERTS].plans.index("subject:" + sid)
        if own is not None and d.plan[d.index[sid]] == own:
            break
        await asyncio.sleep(0.05)
    assert own is not None and d.plan[d.index[sid]] == own
    assert b.app[ALERTS].watcher.next_deadline_of(own) == new
    assert d.plan[d.index[other]] == normal  # only that subject moved

    # the admin list shows each subject's plan and next window
    page = await (await a.get(f"/api/v1/admin/subjects?q={sid}")).json()
    [row] = [s for s in page["items"] if s["id"] == sid]
    assert row["plan_override"] and datetime.fromisoformat(row["next_window"]["deadline"]) == new
    page = await (await a.get(f"/api/v1/admin/subjects?q={other}")).json()
    [row] = [s for s in page["items"] if s["id"] == other]
    assert not row["plan_override"]
    assert datetime.fromisoformat(row["next_window"]["deadline"]) == START.replace(
        hour=12, minute=10
    )

    # the watcher acts on it: that subject (and only it) misses this morning's window
    await fake_clock.set(new + timedelta(seconds=1))
    await b.app[ALERTS].watcher.wait_processed(new + timedelta(seconds=1))
    await a.app[ALERTS].watcher.wait_processed(new + timedelta(seconds=1))
    async with a.app[SESSIONMAKER]() as session:
        raised = (
            await session.scalars(select(Alarm.subject_id).where(Alarm.kind == "no_checkin"))
        ).all()
    assert raised == [sid]

    # audited with before and after
    async with a.app[SESSIONMAKER]() as session:
        entry = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "subject.plan", AuditEntry.target_id == sid
                )
            )
        ).one()
    details = json.loads(entry.details)
    assert details["before"]["override"] is False
    assert details["after"] == {"spec": "daily 09:30-10:00", "override": True}

    # a bad plan is a 422 that changes nothing; an unknown subject is a 404
    resp = await a.put(
        f"/api/v1/admin/subjects/{sid}/plan",
        json={"spec": "daily 25:00-26:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 422
    assert b.app[ALERTS].plans.plans[own].spec == "daily 09:30-10:00"
    resp = await a.put(
        "/api/v1/admin/subjects/nobody-here/plan",
        json={"spec": "daily 09:00-10:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 404

    # cleared: back on the level's plan, on both instances
    resp = await a.delete(f"/api/v1/admin/subjects/{sid}/plan", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["plan_override"] is False and body["plan"] == b.app[ALERTS].plans.plans[normal].spec
    for _ in range(200):
        if d.plan[d.index[sid]] == normal:
            break
        await asyncio.sleep(0.05)
    assert d.plan[d.index[sid]] == normal
