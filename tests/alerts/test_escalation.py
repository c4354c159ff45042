"""Escalation with the fake clock: missed acknowledgement and report at each level, the
24-hour breach flag, and timers that fire once after a restart and with two instances."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from alerts.models import AlarmEvent
from center.clock import FakeClock
from center.models import AuditEntry
from tests.alerts.helpers import eventually
from tests.alerts.workflow_support import browser, raise_alarm
from tests.conftest import AppFactory, login
from tests.web.test_api_workflow import act, armed
from web import keys


async def detail(client: Any, alarm_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/alarms/{alarm_id}/workflow")
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def wait_for(client: Any, alarm_id: int, **expected: Any) -> dict[str, Any]:
    async def check() -> bool:
        d = await detail(client, alarm_id)
        return all(d.get(k) == v for k, v in expected.items())

    await eventually(check)
    return await detail(client, alarm_id)


def events_of(d: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in d["timeline"] if e["type"] == type_]


async def test_missed_acknowledgement_climbs_street_district_city(
    demo_client: TestClient, fake_clock: FakeClock
) -> None:
    client = demo_client
    await login(client, "duty1")
    alarm = await raise_alarm(client, severity="high")  # ack SLA 10 min
    a = await armed(client, alarm["id"])
    assert a["ack_due_at"] == "2026-11-25T01:10:00+00:00"
    assert a["loop_due_at"] == "2026-11-26T01:00:00+00:00"
    await fake_clock.advance(minutes=9)
    assert (await detail(client, a["id"]))["owner_level"] == "street"
    seen: list[dict[str, Any]] = []
    client.app[keys.BUS].subscribe("alarms", lambda m: seen.append(m.data))
    await fake_clock.advance(minutes=1)
    a = await wait_for(client, a["id"], owner_level="district", escalations=1)
    assert a["ack_due_at"] == "2026-11-25T01:20:00+00:00" and a["state"] == "new"
    assert any(d["owner_level"] == "district" for d in seen)  # the district is notified
    esc = events_of(a, "escalated")
    assert esc[0]["data"]["reason"] == "ack" and esc[0]["data"]["to_level"] == "district"
    async with browser(client, "futian") as (district, _):
        d = await detail(district, a["id"])
        assert "acknowledge" in d["actions"]
    await fake_clock.advance(minutes=10)
    a = await wait_for(client, a["id"], owner_level="city", escalations=2)
    await fake_clock.advance(minutes=10)

    async def overdue() -> bool:
        return bool(events_of(await detail(client, a["id"]), "ack_overdue"))

    await eventually(overdue)
    a = await detail(client, a["id"])
    assert a["owner_level"] == "city" and a["escalations"] == 2
    async with client.app[keys.SESSIONMAKER]() as session:
        n = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "alarm.escalated")
        )
    assert n == 2
    # Acknowledging stops the clock: nothing more happens.
    csrf = await login(client, "duty1")
    status, a = await act(client, csrf, a["id"], "acknowledge", a["version"])
    assert status == 200
    await fake_clock.advance(hours=1)
    assert (await detail(client, a["id"]))["escalations"] == 2


async def test_missed_report_climbs_and_acknowledgement_cancels(
    demo_client: TestClient, fake_clock: FakeClock
) -> None:
    client = demo_client
    csrf = await login(client, "duty1")
    alarm = await raise_alarm(client, severity="high")  # report SLA 4 h
    a = await armed(client, alarm["id"])
    status, a = await act(client, csrf, a["id"], "acknowledge", a["version"])
    await fake_clock.advance(minutes=30)  # the ack timer was cancelled: no escalation
    status, a = await act(client, csrf, a["id"], "dispatch", a["version"], note="请核查")
    assert a["owner_level"] == "street" and a["report_due_at"] == "2026-11-25T05:30:00+00:00"
    assert a["escalations"] == 0
    await fake_clock.advance(hours=4)
    a = await wait_for(client, a["id"], owner_level="district", escalations=1)
    assert a["report_due_at"] == "2026-11-25T09:30:00+00:00"
    assert events_of(a, "escalated")[-1]["data"]["reason"] == "report"
    await fake_clock.advance(hours=4)
    a = await wait_for(client, a["id"], owner_level="city", escalations=2)
    # The street may still report late; that ends the report deadline.
    async with browser(client, "street1") as (street, s_csrf):
        status, a = await act(street, s_csrf, a["id"], "report", a["version"], note="已核实")
        assert status == 200 and a["state"] == "verifying"
    await fake_clock.advance(hours=8)
    d = await detail(client, a["id"])
    assert d["escalations"] == 2 and not events_of(d, "report_overdue")


async def test_closed_loop_breach_is_flagged_and_counted(
    demo_client: TestClient, fake_clock: FakeClock
) -> None:
    client = demo_client
    csrf = await login(client, "duty1")
    late = await armed(client, (await raise_alarm(client, severity="low"))["id"])
    done = await armed(client, (await raise_alarm(client, severity="low"))["id"])
    status, d = await act(client, csrf, done["id"], "acknowledge", done["version"])
    status, d = await act(client, csrf, d["id"], "dispatch", d["version"])
    async with browser(client, "street1") as (street, s_csrf):
        status, d = await act(street, s_csrf, d["id"], "report", d["version"], note="核查")
        status, d = await act(
            street, s_csrf, d["id"], "resolve", d["version"], note="误报", disposition="false_alarm"
        )
        assert status == 200
    await fake_clock.advance(hours=23, minutes=59)
    await login(client, "duty1")  # the idle session expired meanwhile
    assert not (await detail(client, late["id"]))["loop_breached"]
    await fake_clock.advance(minutes=1)
    a = await wait_for(client, late["id"], loop_breached=True)
    assert events_of(a, "loop_breached")
    assert not (await detail(client, done["id"]))["loop_breached"]
    metrics = await (await client.get("/metrics")).text()
    assert "center_alarm_loop_breaches_total 1" in metrics


async def _escalation_count(client: TestClient, alarm_id: int) -> int:
    async with client.app[keys.SESSIONMAKER]() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AlarmEvent)
                .where(AlarmEvent.alarm_id == alarm_id, AlarmEvent.type == "escalated")
            )
            or 0
        )


async def test_timers_fire_once_after_a_restart(
    make_client: AppFactory, fake_clock: FakeClock, database_url: str
) -> None:
    first = await make_client(demo=True, database_url=database_url)
    await login(first, "duty1")
    alarm = await armed(first, (await raise_alarm(first, severity="critical"))["id"])  # 5 min
    await first.close()  # the server stops with the ack timer pending
    await fake_clock.advance(minutes=30)  # downtime: the deadline passes
    second = await make_client(demo=True, database_url=database_url)
    await login(second, "duty1")
    a = await wait_for(second, alarm["id"], owner_level="district", escalations=1)
    # The district's fresh deadline is counted from the firing, not from the missed one.
    assert a["ack_due_at"] == "2026-11-25T01:35:00+00:00"
    await fake_clock.advance(minutes=1)
    assert await _escalation_count(second, alarm["id"]) == 1


async def test_two_instances_escalate_once(
    make_client: AppFactory, fake_clock: FakeClock, database_url: str
) -> None:
    a_app = await make_client(demo=True, database_url=database_url)
    b_app = await make_client(demo=True, database_url=database_url)
    await login(a_app, "duty1")
    await login(b_app, "duty2")
    ids = []
    for _ in range(5):
        alarm = await raise_alarm(a_app, severity="critical")
        await b_app.app[keys.BUS].publish("alarms", "alarm.raised", alarm)  # both hear it
        ids.append((await armed(a_app, alarm["id"]))["id"])
    await fake_clock.advance(minutes=5)
    for alarm_id in ids:
        await wait_for(b_app, alarm_id, owner_level="district")
    await fake_clock.advance(minutes=5)
    for alarm_id in ids:
        await wait_for(a_app, alarm_id, owner_level="city")
    await fake_clock.advance(minutes=1)
    for alarm_id in ids:
        assert await _escalation_count(a_app, alarm_id) == 2
        d = await detail(a_app, alarm_id)
        assert d["escalations"] == 2
        # armed once: one loop timer, one first ack timer
    async with a_app.app[keys.SESSIONMAKER]() as session:
        from center.timers import Timer

        keys_ = (await session.execute(select(Timer.key).order_by(Timer.key))).scalars().all()
    assert len(keys_) == len(set(keys_)) == 5 * 4  # ack x3 (street, district, city) + loop
    fired = a_app.app[keys.METRICS]
    _ = fired, json


async def test_arming_loop_ends_when_cancelled_as_an_alarm_arrives() -> None:
    """Shutdown cancels the arming loop; an alarm queued in the same instant must not eat
    the cancellation (``asyncio.wait_for`` on 3.11 did, and teardown then hung forever)."""
    import asyncio

    from alerts.escalation import Escalator

    esc = object.__new__(Escalator)
    esc._queue = asyncio.Queue()
    armed: list[int] = []

    async def sweep() -> None:
        return None

    async def arm(alarm_id: int) -> None:
        armed.append(alarm_id)

    esc.sweep = sweep  # type: ignore[method-assign]
    esc.arm = arm  # type: ignore[method-assign]
    for _ in range(20):
        task = asyncio.create_task(esc.run_arming(3600))
        for _ in range(5):
            await asyncio.sleep(0)  # parked in queue.get()
        esc._queue.put_nowait(1)
        await asyncio.sleep(0)  # the getter completes ...
        task.cancel()  # ... and the cancellation arrives before the loop resumes
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, "the arming loop ignored its cancellation"
        assert task.cancelled()
