"""Live subject changes (web/admin_subjects.py): a subject moved to another level is checked
against that level's plan from the next closing window, on the instance that took the change
and, through the bus, on the other one."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from alerts.models import Alarm
from center.clock import FakeClock
from center.models import Subject
from tests.conftest import REDIS_URL, AppFactory, login, need_redis
from web.keys import ALERTS, SESSIONMAKER

# 09:00 in Shanghai (the fake clock's start); strict here is 09:30-10:00, closing 10:10
STRICT_DEADLINE = datetime(2026, 11, 25, 2, 10, tzinfo=UTC)


async def test_a_subject_moved_to_strict_gets_todays_strict_window_on_both_instances(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    need_redis()
    common = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"t{uuid.uuid4().hex[:8]}:",
        "alarm_catchup_h": 0,
        "checkin_plan_strict": "daily 09:30-10:00",
        "checkin_plan_lenient": "mon 00:00-00:01",
    }
    a = await make_client(demo=True, database_url=database_url, **common)
    b = await make_client(demo=True, database_url=database_url, **common)
    async with a.app[SESSIONMAKER]() as session:
        sid = await session.scalar(
            select(Subject.id).where(Subject.level == "normal").order_by(Subject.id).limit(1)
        )
    assert sid is not None
    csrf = await login(a, "admin")
    h = {"X-CSRF-Token": csrf}

    found = await (await a.get(f"/api/v1/admin/subjects?q={sid}")).json()
    assert [s["id"] for s in found["items"]] == [sid] and found["total"] == 1
    resp = await a.patch(f"/api/v1/admin/subjects/{sid}", json={"level": "strict"}, headers=h)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["level"] == "strict"
    info = a.app[ALERTS].directory.get(sid)
    assert info is not None and info.level == "strict"  # at once here
    for _ in range(200):  # and through the bus on B
        info = b.app[ALERTS].directory.get(sid)
        if info is not None and info.level == "strict":
            break
        await asyncio.sleep(0.05)
    assert info is not None and info.level == "strict"
    strict = b.app[ALERTS].plans.index("strict")
    assert strict is not None
    assert b.app[ALERTS].directory.plan[info.index] == strict

    page = await (await a.get(f"/api/v1/audit?object=subject:{sid}")).json()
    entry = next(e for e in page["items"] if e["action"] == "subject.update")
    details = json.loads(entry["details"])
    assert details["before"]["level"] == "normal" and details["after"]["level"] == "strict"

    # this morning's strict window closes (the normal one closes only tonight): an alarm
    after = STRICT_DEADLINE + timedelta(seconds=1)
    await fake_clock.set(after)
    await a.app[ALERTS].watcher.wait_processed(after)
    await b.app[ALERTS].watcher.wait_processed(after)
    async with a.app[SESSIONMAKER]() as session:
        alarms = list(
            await session.scalars(
                select(Alarm).where(Alarm.subject_id == sid, Alarm.kind == "no_checkin")
            )
        )
    assert len(alarms) == 1 and alarms[0].level == "strict", alarms

    # bad input is a 4xx that changes nothing
    for body in ({"level": "nobody"}, {"street_id": "nowhere"}, {"extra": 1}):
        resp = await a.patch(f"/api/v1/admin/subjects/{sid}", json=body, headers=h)
        assert resp.status in (404, 422), (body, resp.status)
    assert (await a.patch("/api/v1/admin/subjects/nobody", json={}, headers=h)).status == 404
    async with a.app[SESSIONMAKER]() as session:
        row = await session.get(Subject, sid)
        assert row is not None and row.level == "strict"
