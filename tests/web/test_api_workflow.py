"""``POST /api/v1/alarms/{id}/actions``: every transition and every refusal, over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from alerts.models import AlarmEvent
from center.models import AuditEntry
from tests.alerts.helpers import eventually
from tests.alerts.workflow_support import browser, raise_alarm
from tests.conftest import login
from web import keys


async def act(
    client: TestClient, csrf: str, alarm_id: int, action: str, version: int, **extra: Any
) -> tuple[int, dict[str, Any]]:
    resp = await client.post(
        f"/api/v1/alarms/{alarm_id}/actions",
        json={"action": action, "version": version, **extra},
        headers={"X-CSRF-Token": csrf},
    )
    return resp.status, await resp.json()


async def armed(client: TestClient, alarm_id: int) -> dict[str, Any]:
    async def check() -> bool:
        resp = await client.get(f"/api/v1/alarms/{alarm_id}/workflow")
        return resp.status == 200 and (await resp.json())["loop_due_at"] is not None

    await eventually(check)
    resp = await client.get(f"/api/v1/alarms/{alarm_id}/workflow")
    return dict(await resp.json())


async def test_full_lifecycle_with_events_and_audit(demo_client: TestClient) -> None:
    duty = demo_client
    csrf = await login(duty, "duty1")
    alarm = await raise_alarm(duty)
    a = await armed(duty, alarm["id"])
    assert (
        a["state"] == "new" and a["owner_level"] == "street" and a["version"] == 1
    )  # arming stamps deadlines without bumping the version
    assert a["actions"] == ["acknowledge", "note"]

    status, a = await act(duty, csrf, a["id"], "acknowledge", a["version"], note="收到")
    assert status == 200 and a["state"] == "acknowledged" and a["acknowledged_at"]
    status, a = await act(duty, csrf, a["id"], "dispatch", a["version"], note="请核查")
    assert status == 200 and a["state"] == "dispatched" and a["report_due_at"]

    async with browser(duty, "street1") as (street, s_csrf):
        resp = await street.get(f"/api/v1/alarms/{a['id']}/workflow")
        assert resp.status == 200 and (await resp.json())["actions"] == ["report", "note"]
        status, a = await act(street, s_csrf, a["id"], "report", a["version"], note="已电话联系")
        assert status == 200 and a["state"] == "verifying"
        status, a = await act(
            street,
            s_csrf,
            a["id"],
            "resolve",
            a["version"],
            note="手机故障，已补签",
            disposition="excused",
        )
        assert status == 200 and a["state"] == "resolved" and a["disposition"] == "excused"
        status, a = await act(street, s_csrf, a["id"], "note", a["version"], note="补充说明")
        assert status == 200 and a["state"] == "resolved"
    status, a = await act(duty, csrf, a["id"], "close", a["version"], note="办结")
    assert status == 200 and a["state"] == "closed" and a["closed_at"]
    status, a = await act(duty, csrf, a["id"], "reopen", a["version"], note="复查")
    assert status == 200 and a["state"] == "reopened" and a["disposition"] is None

    resp = await duty.get(f"/api/v1/alarms/{a['id']}/workflow")
    timeline = (await resp.json())["timeline"]
    steps = [(e["type"], e["from_state"], e["to_state"]) for e in timeline]
    assert steps == [
        ("acknowledged", "new", "acknowledged"),
        ("dispatched", "acknowledged", "dispatched"),
        ("reported", "dispatched", "verifying"),
        ("resolved", "verifying", "resolved"),
        ("note", "resolved", "resolved"),
        ("closed", "resolved", "closed"),
        ("reopened", "closed", "reopened"),
    ]
    assert timeline[2]["actor"] == "user:street1" and timeline[2]["note"] == "已电话联系"
    assert timeline[3]["data"]["disposition"] == "excused"
    async with duty.app[keys.SESSIONMAKER]() as session:
        audit = (
            (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.target_type == "alarm")
                    .order_by(AuditEntry.id)
                )
            )
            .scalars()
            .all()
        )
    actions = [(e.action, e.actor, json.loads(e.details)["to_state"]) for e in audit]
    assert actions == [
        ("alarm.acknowledge", "user:duty1", "acknowledged"),
        ("alarm.dispatch", "user:duty1", "dispatched"),
        ("alarm.report", "user:street1", "verifying"),
        ("alarm.resolve", "user:street1", "resolved"),
        ("alarm.note", "user:street1", "resolved"),
        ("alarm.close", "user:duty1", "closed"),
        ("alarm.reopen", "user:duty1", "reopened"),
    ]
    assert json.loads(audit[3].details)["note"] == "手机故障，已补签"
    assert json.loads(audit[0].details)["from_state"] == "new"


async def test_refusals(demo_client: TestClient) -> None:
    client = demo_client
    await login(client, "duty1")
    alarm = await raise_alarm(client)
    a = await armed(client, alarm["id"])
    v = a["version"]
    # wrong role (the endpoint's policy): admin never acts on alarms
    csrf = await login(client, "admin")
    status, body = await act(client, csrf, a["id"], "acknowledge", v)
    assert status == 403 and body["error"]["code"] == "forbidden"
    # wrong jurisdiction: another street's officer gets 404, on reads as well
    csrf = await login(client, "street2")
    status, body = await act(client, csrf, a["id"], "acknowledge", v)
    assert status == 404 and body["error"]["code"] == "not_found"
    resp = await client.get(f"/api/v1/alarms/{a['id']}/workflow")
    assert resp.status == 404
    status, _ = await act(client, csrf, 999_999, "acknowledge", 1)
    assert status == 404
    # wrong role for the action: a street officer may never dispatch
    csrf = await login(client, "street1")
    status, body = await act(client, csrf, a["id"], "dispatch", v)
    assert status == 403 and body["error"]["code"] == "forbidden"
    # wrong level for the owner: the district acts only once escalated to it
    csrf = await login(client, "futian")
    status, body = await act(client, csrf, a["id"], "acknowledge", v)
    assert status == 403 and body["error"]["details"]["owner_level"] == "street"
    # wrong state
    csrf = await login(client, "duty1")
    status, body = await act(client, csrf, a["id"], "resolve", v, note="x", disposition="warned")
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    assert body["error"]["details"]["state"] == "new"
    # stale version
    status, body = await act(client, csrf, a["id"], "acknowledge", v + 1)
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["details"]["version"] == v
    # bad bodies change nothing
    for bad in (
        {"action": "fly", "version": v},
        {"action": "acknowledge"},
        {"action": "acknowledge", "version": "2"},
        {"action": "note", "version": v},
        {"action": "acknowledge", "version": v, "disposition": "warned"},
    ):
        resp = await client.post(
            f"/api/v1/alarms/{a['id']}/actions", json=bad, headers={"X-CSRF-Token": csrf}
        )
        assert resp.status == 422, bad
    # no CSRF token
    resp = await client.post(
        f"/api/v1/alarms/{a['id']}/actions", json={"action": "acknowledge", "version": v}
    )
    assert resp.status == 403
    resp = await client.get(f"/api/v1/alarms/{a['id']}/workflow")
    after = await resp.json()
    assert after["state"] == "new" and after["version"] == v and after["timeline"] == []
    # resolve needs a disposition code and a note
    status, a2 = await act(client, csrf, a["id"], "acknowledge", v)
    status, a2 = await act(client, csrf, a["id"], "dispatch", a2["version"])
    csrf = await login(client, "street1")
    status, a2 = await act(client, csrf, a["id"], "report", a2["version"], note="核查")
    for bad in ({"note": "x"}, {"note": "x", "disposition": "shrug"}, {"disposition": "warned"}):
        status, body = await act(client, csrf, a["id"], "resolve", a2["version"], **bad)
        assert status == 422, bad
    # the street closes only what it owns; the district may not close before resolution
    csrf = await login(client, "futian")
    status, body = await act(client, csrf, a["id"], "close", a2["version"])
    assert status == 409 and body["error"]["code"] == "invalid_transition"


async def test_two_officers_cannot_both_claim(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    alarm = await raise_alarm(demo_client)
    a = await armed(demo_client, alarm["id"])
    csrf1 = await login(demo_client, "duty1")
    async with browser(demo_client, "duty2") as (other, csrf2):
        results = await asyncio.gather(
            act(demo_client, csrf1, a["id"], "acknowledge", a["version"]),
            act(other, csrf2, a["id"], "acknowledge", a["version"]),
        )
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 409]
    loser = next(b for s, b in results if s == 409)
    assert loser["error"]["code"] == "conflict" and "reload" in loser["error"]["message"]
    async with demo_client.app[keys.SESSIONMAKER]() as session:
        events = (
            (
                await session.execute(
                    select(AlarmEvent).where(
                        AlarmEvent.alarm_id == a["id"], AlarmEvent.type == "acknowledged"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(events) == 1


async def test_bulk_acknowledge_and_dispatch(demo_client: TestClient) -> None:
    csrf = await login(demo_client, "duty1")
    alarms = [await armed(demo_client, (await raise_alarm(demo_client))["id"]) for _ in range(3)]
    items = [{"id": a["id"], "version": a["version"]} for a in alarms]
    items[1]["version"] += 1  # not the current version: refused, the others still go through
    resp = await demo_client.post(
        "/api/v1/alarms/actions",
        json={"action": "acknowledge", "items": items},
        headers={"X-CSRF-Token": csrf},
    )
    body = await resp.json()
    assert resp.status == 200 and body["ok"] == 2
    assert [r["ok"] for r in body["results"]] == [True, False, True]
    assert body["results"][1]["error"]["code"] == "conflict"
    items = [
        {"id": r["alarm"]["id"], "version": r["alarm"]["version"]}
        for r in body["results"]
        if r["ok"]
    ]
    resp = await demo_client.post(
        "/api/v1/alarms/actions",
        json={"action": "dispatch", "items": items, "note": "风暴批量派发"},
        headers={"X-CSRF-Token": csrf},
    )
    body = await resp.json()
    assert body["ok"] == 2 and all(r["alarm"]["state"] == "dispatched" for r in body["results"])


async def test_updates_are_published_after_commit(demo_client: TestClient) -> None:
    seen: list[tuple[str, int, str]] = []
    demo_client.app[keys.BUS].subscribe(
        "alarms", lambda m: seen.append((m.type, m.data["id"], m.data["state"]))
    )
    csrf = await login(demo_client, "duty1")
    alarm = await raise_alarm(demo_client)
    a = await armed(demo_client, alarm["id"])
    await act(demo_client, csrf, a["id"], "acknowledge", a["version"])
    await act(demo_client, csrf, a["id"], "acknowledge", a["version"])  # refused: no event
    assert seen == [
        ("alarm.raised", a["id"], "new"),
        ("alarm.updated", a["id"], "new"),  # armed: deadlines stamped
        ("alarm.updated", a["id"], "acknowledged"),
    ]


async def test_queue_is_sorted_scoped_and_filtered(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    low = await raise_alarm(demo_client, severity="low")
    crit = await raise_alarm(demo_client, severity="critical", kind="sos")
    other = await raise_alarm(demo_client, severity="high", street_of_user="street2")
    resp = await demo_client.get("/api/v1/alarms/queue")
    body = await resp.json()
    assert [i["id"] for i in body["items"]] == [crit["id"], other["id"], low["id"]]
    assert body["total"] == 3 and body["items"][0]["subject_name"]
    resp = await demo_client.get("/api/v1/alarms/queue?kind=sos")
    assert [i["id"] for i in (await resp.json())["items"]] == [crit["id"]]
    resp = await demo_client.get("/api/v1/alarms/queue?level=district")
    assert (await resp.json())["total"] == 0
    async with browser(demo_client, "street2") as (street, _):
        resp = await street.get("/api/v1/alarms/queue")
        assert [i["id"] for i in (await resp.json())["items"]] == [other["id"]]
        resp = await street.get("/api/v1/alarms/queue?street=" + low["street_id"])
        assert resp.status == 404
