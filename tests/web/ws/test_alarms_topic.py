"""The alarms topic: per-recipient filtering and masking, resume with since, no gap between
snapshot and events, and slow clients dropped instead of the server."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from center.bus import DEFAULT_HISTORY_SIZE
from tests.conftest import AppFactory, login
from tests.web.ws.conftest import alarm, authed, bus_of, street_of, wall_token


async def test_street_officer_sees_only_own_street(demo_client: TestClient) -> None:
    own, other = street_of(demo_client, "street1"), street_of(demo_client, "street2")
    await login(demo_client, "street1")
    ws = await authed(demo_client)
    sub = await ws.send("subscribe", topic="alarms")
    assert (await ws.result(sub))["result"]["snapshot"]["alarms"] == []
    bus = bus_of(demo_client)
    await bus.publish("alarms", "alarm.raised", alarm(other, alarm_id="X1"))
    await bus.publish("alarms", "alarm.raised", alarm(own, alarm_id="X2"))
    events = await ws.wait_events(sub, lambda evs: evs)
    assert [e["data"]["id"] for e in events] == ["X2"]
    assert events[0]["data"]["subject_name"] == "张三丰"  # officers see full names
    assert events[0]["seq"] == 2 and events[0]["type"] == "alarm.raised"
    await ws.close()


async def test_wall_gets_masked_alarms_without_personal_fields(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub = await ws.send("subscribe", topic="alarms")
    await ws.result(sub)
    street = street_of(demo_client, "street1")
    await bus_of(demo_client).publish("alarms", "alarm.raised", alarm(street, name="欧阳娜娜"))
    (event,) = await ws.wait_events(sub, lambda evs: evs)
    data = event["data"]
    assert data["subject_name"] == "欧**娜"
    assert "id_number" not in data and "phone" not in data and "subject_id" not in data
    text = str(ws.messages)
    assert "欧阳娜娜" not in text and "440301199001011234" not in text and "17000001234" not in text
    # the snapshot of a second wall is masked too
    ws2 = await authed(demo_client, wall_token(demo_client))
    snap = (await ws2.call("subscribe", topic="alarms"))["result"]["snapshot"]
    assert snap["total"] == 1 and snap["alarms"][0]["subject_name"] == "欧**娜"
    assert "id_number" not in snap["alarms"][0]
    await ws.close()
    await ws2.close()


async def test_resume_replays_exactly_the_missed_events(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    street = street_of(demo_client, "street1")
    bus = bus_of(demo_client)
    ws = await authed(demo_client)
    sub = await ws.send("subscribe", topic="alarms")
    first = (await ws.result(sub))["result"]
    for i in range(3):
        await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id=f"R{i}"))
    seen = await ws.wait_events(sub, lambda evs: len(evs) == 3)
    await ws.close()
    last = seen[-1]
    for i in range(3, 8):
        await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id=f"R{i}"))
    ws = await authed(demo_client)
    sub = await ws.send(
        "subscribe", topic="alarms", since={"epoch": first["epoch"], "seq": last["seq"]}
    )
    result = (await ws.result(sub))["result"]
    assert result["recovered"] is True
    assert [e["data"]["id"] for e in result["events"]] == [f"R{i}" for i in range(3, 8)]
    assert [e["seq"] for e in result["events"]] == list(range(last["seq"] + 1, last["seq"] + 6))
    assert result["seq"] == last["seq"] + 5
    await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id="R8"))
    events = await ws.wait_events(sub, lambda evs: evs)
    assert [e["data"]["id"] for e in events] == ["R8"]
    # nothing missed, nothing twice
    await asyncio.sleep(0.05)
    assert len(ws.events(sub)) == 1
    await ws.close()


async def test_resume_past_the_history_gets_a_snapshot(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    street = street_of(demo_client, "street1")
    bus = bus_of(demo_client)
    ws = await authed(demo_client)
    first = await ws.call("subscribe", topic="alarms")
    epoch, seq = first["result"]["epoch"], first["result"]["seq"]
    await ws.close()
    await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id="KEEP"))
    for i in range(DEFAULT_HISTORY_SIZE + 5):
        data = alarm(street, alarm_id=f"H{i}", state="closed")
        await bus.publish("alarms", "alarm.updated", data)
    ws = await authed(demo_client)

    async def resume(since: dict[str, object]) -> dict[str, object]:
        # one subscription at a time: a duplicate of a held one is refused
        reply = await ws.call("subscribe", topic="alarms", since=since)
        assert (await ws.call("unsubscribe", subscription=reply["id"]))["success"]
        return reply["result"]  # type: ignore[no-any-return]

    res = await resume({"epoch": epoch, "seq": seq})
    assert res["recovered"] is False
    assert [a["id"] for a in res["snapshot"]["alarms"]] == ["KEEP"]  # type: ignore[index]
    assert res["seq"] == seq + DEFAULT_HISTORY_SIZE + 6
    # another epoch (a restarted in-process bus) is also a snapshot, not an error
    res = await resume({"epoch": "gone", "seq": 3})
    assert res["recovered"] is False and res["snapshot"]["total"] == 1  # type: ignore[index]
    # a position the stream never had (from the future) too
    res = await resume({"epoch": epoch, "seq": 10**6})
    assert res["recovered"] is False
    await ws.close()


async def test_snapshot_then_subscribe_has_no_gap(demo_client: TestClient) -> None:
    """Alarms raised while clients subscribe are in the snapshot or in the events, exactly
    once: snapshot ids ∪ event ids == every alarm raised."""
    await login(demo_client, "duty1")
    street = street_of(demo_client, "street1")
    bus = bus_of(demo_client)
    total = 300

    async def publisher() -> None:
        for i in range(total):
            await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id=f"G{i:04d}"))
            if i % 10 == 0:
                await asyncio.sleep(0.002)

    clients = [await authed(demo_client) for _ in range(5)]
    task = asyncio.create_task(publisher())
    subs = []
    for ws in clients:
        await asyncio.sleep(0.01)
        subs.append(await ws.send("subscribe", topic="alarms"))
    await task
    for ws, sub in zip(clients, subs, strict=True):
        result = (await ws.result(sub))["result"]
        snap_ids = [a["id"] for a in result["snapshot"]["alarms"]]
        events = await ws.wait_events(sub, lambda evs, n=len(snap_ids): len(evs) >= total - n)
        event_ids = [e["data"]["id"] for e in events]
        assert sorted(snap_ids + event_ids) == [f"G{i:04d}" for i in range(total)]
        assert [e["seq"] for e in events] == list(
            range(result["seq"] + 1, result["seq"] + 1 + len(events))
        )
        await ws.close()


async def test_slow_client_is_dropped_not_the_server(make_client: AppFactory) -> None:
    from web.ws.hub import hub_of

    client = await make_client(demo=True, ws_send_queue=16)
    await login(client, "duty1")
    street = street_of(client, "street1")
    bus = bus_of(client)
    slow = await client.ws_connect("/ws")  # raw: we stop reading it after subscribing
    await slow.send_json({"id": 1, "type": "auth"})
    assert (await slow.receive_json())["success"]
    await slow.send_json({"id": 2, "type": "subscribe", "topic": "alarms"})
    assert (await slow.receive_json())["success"]
    healthy = await authed(client)
    sub = await healthy.send("subscribe", topic="alarms")
    await healthy.result(sub)
    hub = hub_of(client.app)
    padding = "x" * 20_000
    sent = 0
    while hub.dropped == 0 and sent < 5000:
        for _ in range(4):  # bursts well under the bound: only a stalled reader falls behind
            await bus.publish("alarms", "alarm.raised", alarm(street, note=padding))
            sent += 1
        await healthy.wait_events(sub, lambda evs, n=sent: len(evs) == n)
    assert hub.dropped == 1
    # the healthy client keeps getting everything, and the server keeps serving
    await healthy.wait_events(sub, lambda evs: len(evs) == sent)
    assert (await healthy.call("ping"))["success"]
    # the slow client finds a 1013 close once it reads again
    code = None
    while code is None:
        msg = await asyncio.wait_for(slow.receive(), 10)
        if msg.type.name in ("CLOSE", "CLOSED", "CLOSING", "ERROR"):
            code = slow.close_code
    assert code in (1013, 1006)
    await healthy.close()


async def test_duplicate_and_excess_subscriptions_are_refused(make_client: AppFactory) -> None:
    """A wall token's thousand identical ``alarms`` subscriptions pulled 177 MB of snapshots:
    a duplicate is refused, and so is one past ``ws_max_subscriptions``."""
    client = await make_client(demo=True, ws_max_subscriptions=3)
    await login(client, "duty1")
    ws = await authed(client)
    first = await ws.call("subscribe", topic="alarms")
    assert first["success"], first
    again = await ws.call("subscribe", topic="alarms")
    assert again["success"] is False and again["error"]["code"] == "already_subscribed"
    assert (await ws.call("subscribe", topic="alarms", jurisdiction="440304"))["success"]
    assert (await ws.call("subscribe", topic="alarms", jurisdiction="440303"))["success"]
    over = await ws.call("subscribe", topic="alarms", jurisdiction="440305")
    assert over["success"] is False and over["error"]["code"] == "too_many_subscriptions"
    # unsubscribing frees both the slot and the topic
    assert (await ws.call("unsubscribe", subscription=first["id"]))["success"]
    assert (await ws.call("subscribe", topic="alarms"))["success"]
    assert (await ws.call("ping"))["success"]
    await ws.close()
