"""Live alarm settings (web/admin_alarm_settings.py): severities, SLA minutes and loop hours
change from the admin page at once, on the other instance through the bus, and stay after a
restart."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from center.clock import FakeClock
from tests.alerts.conftest import alarms_for, subject_of_level
from tests.alerts.helpers import eventually
from tests.alerts.test_rules import post_event
from tests.conftest import REDIS_URL, AppFactory, login, need_redis
from web import keys


async def test_severity_and_sla_change_live_on_both_instances_and_persist(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    need_redis()
    common = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"t{uuid.uuid4().hex[:8]}:",
        "ack_sla_minutes": "critical=1,high=3,default=10",
    }
    a = await make_client(demo=True, database_url=database_url, **common)
    b = await make_client(demo=True, database_url=database_url, **common)
    csrf = await login(a, "admin")
    h = {"X-CSRF-Token": csrf}
    shown = await (await a.get("/api/v1/admin/alarm-settings")).json()
    assert shown["ack_sla_minutes"] == "critical=1,high=3,default=10"

    change = {"alarm_severity": "sos=high", "ack_sla_minutes": "high=7,default=10",
              "loop_hours": 12}  # fmt: skip
    resp = await a.put("/api/v1/admin/alarm-settings", json=change, headers=h)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["alarm_severity"], body["loop_hours"]) == ("sos=high", 12)
    assert a.app[keys.ALERTS].severity.severity("sos", "normal") == "high"  # at once here

    def b_has_it() -> bool:
        return b.app[keys.WORKFLOW].sla.ack_for("high") == timedelta(minutes=7)

    await eventually(b_has_it, limit_s=10)  # through the bus
    assert b.app[keys.ALERTS].severity.severity("sos", "strict") == "high"
    # an SOS raised on B from now on is "high" with the new acknowledgement deadline
    subject = await subject_of_level(b, "normal")
    assert await post_event(b, subject.id, "sos", fake_clock.now()) in (200, 201, 202)

    async def deadline_set() -> bool:
        return all(x.ack_due_at for x in await alarms_for(b, subject.id) if x.kind == "sos")

    await eventually(deadline_set)  # the escalator gives it its deadline
    [alarm] = [x for x in await alarms_for(b, subject.id) if x.kind == "sos"]
    assert alarm.severity == "high"
    assert alarm.ack_due_at is not None
    assert alarm.ack_due_at - alarm.created_at == timedelta(minutes=7)

    page = await (await a.get("/api/v1/audit?action=settings.update")).json()
    details = json.loads(page["items"][0]["details"])
    assert float(details["before"]["loop_hours"]) != 12
    assert float(details["after"]["loop_hours"]) == 12
    assert details["after"]["alarm_severity"] == "sos=high"

    # bad values are a 422 that changes nothing
    for bad in ({"ack_sla_minutes": "high=soon"}, {"alarm_severity": "sos=urgent"},
                {"loop_hours": 0}, {"other": "x"}):  # fmt: skip
        resp = await a.put("/api/v1/admin/alarm-settings", json=bad, headers=h)
        assert resp.status in (400, 422), (bad, resp.status)
    assert a.app[keys.WORKFLOW].sla.ack_for("high") == timedelta(minutes=7)
    assert a.app[keys.ALERTS].severity.severity("sos", "normal") == "high"

    # a restarted instance (here: a third one, no bus) starts from the stored values
    c = await make_client(demo=True, database_url=database_url, **common)
    assert c.app[keys.WORKFLOW].sla.ack_for("high") == timedelta(minutes=7)
    assert c.app[keys.WORKFLOW].sla.loop == timedelta(hours=12)
    assert c.app[keys.ALERTS].severity.severity("sos", "lenient") == "high"
