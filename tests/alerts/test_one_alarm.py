"""One alarm through every state and every branch of the transition table, and at each step
the three places that count it agree: the console queue, the live dashboard, the daily report.

The rule they share (center.alarm_vocab): new/acknowledged/dispatched/verifying/reopened are
open; ``resolved`` is disposed — not open, closed for the dashboard, in the queue only as
awaiting close; ``closed`` is nowhere in the queue.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from center.alarm_vocab import AWAITING_CLOSE, OPEN_STATES, AlarmState
from tests.alerts.helpers import eventually
from tests.alerts.workflow_support import browser, raise_alarm
from tests.conftest import AppFactory, login
from tests.web.ws.conftest import WsClient, authed, wall_token

TODAY = "2026-11-25"  # the fake clock's local day (Asia/Shanghai)

# (actor, action, extra body, state after): the whole table, each branch once.
STEPS: list[tuple[str, str, dict[str, Any], AlarmState]] = [
    ("duty", "note", {"note": "看到了"}, AlarmState.NEW),
    ("duty", "acknowledge", {}, AlarmState.ACKNOWLEDGED),
    ("duty", "dispatch", {"note": "请核查"}, AlarmState.DISPATCHED),
    ("street", "report", {"note": "已电话联系"}, AlarmState.VERIFYING),
    ("street", "resolve", {"note": "误触", "disposition": "false_alarm"}, AlarmState.RESOLVED),
    ("duty", "reopen", {"note": "复核"}, AlarmState.REOPENED),  # resolved → reopened
    ("duty", "dispatch", {}, AlarmState.DISPATCHED),  # reopened → dispatched
    ("street", "report", {"note": "再次核查"}, AlarmState.VERIFYING),
    ("street", "resolve", {"note": "已警告", "disposition": "warned"}, AlarmState.RESOLVED),
    ("street", "close", {}, AlarmState.CLOSED),  # the owner closes
    ("duty", "reopen", {"note": "申诉"}, AlarmState.REOPENED),  # closed → reopened
    ("duty", "acknowledge", {}, AlarmState.ACKNOWLEDGED),  # reopened → acknowledged
    ("duty", "dispatch", {}, AlarmState.DISPATCHED),
    ("street", "report", {"note": "第三次"}, AlarmState.VERIFYING),
    ("street", "resolve", {"note": "结案", "disposition": "excused"}, AlarmState.RESOLVED),
    ("duty", "close", {}, AlarmState.CLOSED),  # the city closes too (above the owner)
]


def latest(ws: WsClient, sub: int, section: str, snapshot: dict[str, Any]) -> Any:
    for event in reversed(ws.events(sub)):
        if section in event["data"]:
            return event["data"][section]
    return snapshot[section]


async def agree(
    client: TestClient, ws: WsClient, sub: int, snap: dict[str, Any], alarm_id: int, state: str
) -> None:
    is_open = state in OPEN_STATES
    awaiting = state in AWAITING_CLOSE
    # the console queue
    queue = await (await client.get("/api/v1/alarms/queue")).json()
    queued = {a["id"]: a for a in queue["items"]}
    assert (alarm_id in queued) == (is_open or awaiting), (state, queue)
    if alarm_id in queued:
        assert queued[alarm_id]["state"] == state and queued[alarm_id]["subject_name"]
    assert (queue["open"], queue["awaiting_close"]) == (int(is_open), int(awaiting)), state
    # the live dashboard (the projection applies bus events asynchronously)
    want = {"open": int(is_open), "closed_today": int(not is_open)}

    def seen(_: Any) -> bool:
        alarms = latest(ws, sub, "alarms", snap)
        loop = latest(ws, sub, "closed_loop", snap)
        return {"open": alarms["open"], "closed_today": loop["closed_today"]} == want

    await ws.wait_for(seen)
    assert latest(ws, sub, "closed_loop", snap)["raised_today"] == 1
    # the daily report
    report = await (await client.get(f"/api/v1/reports/daily?date={TODAY}")).json()
    states = report["totals"]["states"]
    assert report["totals"]["alarms"] == 1
    assert states == {
        "open": int(is_open),
        "awaiting_close": int(awaiting),
        "closed": int(state == AlarmState.CLOSED),
    }, state
    assert report["totals"]["disposal"]["count"] == int(not is_open)


async def test_one_alarm_through_every_state(make_client: AppFactory, database_url: str) -> None:
    duty = await make_client(demo=True, database_url=database_url)
    csrf = await login(duty, "duty1")
    ws = await authed(duty, wall_token(duty))
    sub = await ws.send("subscribe", topic="dashboard")
    res = await ws.result(sub)
    assert res["success"], res
    snap = res["result"]["snapshot"]

    alarm = await raise_alarm(duty)
    alarm_id = alarm["id"]

    async def armed() -> bool:
        resp = await duty.get(f"/api/v1/alarms/{alarm_id}/workflow")
        return resp.status == 200 and (await resp.json())["loop_due_at"] is not None

    await eventually(armed)
    await agree(duty, ws, sub, snap, alarm_id, AlarmState.NEW)
    version = alarm["version"]
    async with browser(duty, "street1") as (street, s_csrf):
        officers = {"duty": (duty, csrf), "street": (street, s_csrf)}
        for who, action, extra, after in STEPS:
            client, token = officers[who]
            resp = await client.post(
                f"/api/v1/alarms/{alarm_id}/actions",
                json={"action": action, "version": version, **extra},
                headers={"X-CSRF-Token": token},
            )
            body = await resp.json()
            assert resp.status == 200, (who, action, body)
            assert body["state"] == after, (action, body["state"])
            version = body["version"]
            await agree(duty, ws, sub, snap, alarm_id, after)
    await ws.close()
