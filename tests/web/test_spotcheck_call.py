"""A spot-check with real aiortc peers over the websocket: the subject hears the ring on the
``spotchecks`` topic (its own only), answers, both sides decode each other's video, the
officer's challenge reaches the subject's socket, the snapshot is a JPEG whose SHA-256 is
the record's, and the result ends the call with its recording on the record and on the
alarm's timeline. And the ``spotcheck.ringing`` webhook: signed, retried on the clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
from typing import Any

import av
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from center.clock import FakeClock
from tests.alerts.workflow_support import raise_alarm
from tests.conftest import AppFactory, demo_credentials
from tests.web.conftest import media, signal_for, user
from tests.web.ws.rtc_peer import WsPeer, WsSignal, wait_for
from web import keys


async def next_event(signal: WsSignal, sub_id: int, type_: str) -> dict[str, Any]:
    queue = signal.events(sub_id)
    while True:
        event = await asyncio.wait_for(queue.get(), 30)
        if event["type"] == type_:
            return event


async def test_call_challenge_snapshot_result_on_the_alarm(app_client: TestClient) -> None:
    client = app_client
    subject_id = demo_credentials(client)["users"]["subject1"]["subject_id"]
    alarm = await raise_alarm(client, kind="sos")
    phone_login = await user(client, "subject1")
    phone = await signal_for(client, phone_login)
    sub = await phone.call("subscribe", topic="spotchecks")
    assert sub["success"], sub
    assert sub["result"]["snapshot"] == {"spotchecks": []}
    sub_id = sub["id"]
    officer = await user(client, "street1")
    desk = await signal_for(client, officer)
    resp = await client.post(
        "/api/v1/spotchecks",
        json={"subject_id": subject_id, "alarm_id": alarm["id"]},
        headers={"X-CSRF-Token": officer.csrf},
    )
    assert resp.status == 201, await resp.text()
    sc = await resp.json()
    ring = await next_event(phone, sub_id, "spotcheck.state")
    assert ring["data"]["state"] == "ringing" and ring["data"]["id"] == sc["id"]
    assert "note" not in ring["data"] and "home" not in ring["data"]
    # the subject answers (HTTP with its own session), then joins the call
    await user(client, "subject1")
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/answer",
        json={"location_error": "User denied Geolocation"},
        headers={"X-CSRF-Token": (await user(client, "subject1")).csrf},
    )
    assert resp.status == 200, await resp.text()
    a = WsPeer(desk, sc["room_id"], base=10_000)
    b = WsPeer(phone, sc["room_id"], base=20_000)
    officer = await user(client, "street1")
    headers = {"X-CSRF-Token": officer.csrf}
    try:
        await a.join()
        joined = await b.join()
        assert joined["success"], joined
        await asyncio.gather(a.connect(), b.connect())
        await wait_for(lambda: (v := a.video_from(b.participant)) is not None and len(v.valid) > 20)
        await wait_for(lambda: (v := b.video_from(a.participant)) is not None and len(v.valid) > 20)
        resp = await client.post(
            f"/api/v1/spotchecks/{sc['id']}/challenge", json={"kind": "gesture"}, headers=headers
        )
        assert resp.status == 200, await resp.text()
        shown = await next_event(phone, sub_id, "spotcheck.challenge")
        prompt = shown["data"]["challenge"]["prompt"]
        assert prompt in client.app[keys.SETTINGS].spotcheck_gestures
        resp = await client.post(
            f"/api/v1/spotchecks/{sc['id']}/snapshot", json={}, headers=headers
        )
        assert resp.status == 200, await resp.text()
        shot = (await resp.json())["snapshots"][0]["data"]
        assert shot["challenge_item"] is not None and "path" not in shot
        resp = await client.get(shot["url"])
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        jpeg = await resp.read()
        assert hashlib.sha256(jpeg).hexdigest() == shot["sha256"]
        assert resp.headers["X-Content-SHA256"] == shot["sha256"]
        with av.open(io.BytesIO(jpeg)) as container:
            picture = next(container.decode(video=0))
        assert (picture.width, picture.height) == (shot["width"], shot["height"])
        resp = await client.post(
            f"/api/v1/spotchecks/{sc['id']}/result",
            json={"result": "passed", "note": "本人在家"},
            headers=headers,
        )
        assert resp.status == 200, await resp.text()
        for sig, peer in ((desk, a), (phone, b)):
            await wait_for(
                lambda s=sig, p=peer: any(e["type"] == "bye" for e in s.event_log(p.join_id))
            )
    finally:
        for closing in (desk, phone, a, b):
            await closing.close()
    await media(client).settle()
    done = await (await client.get(f"/api/v1/spotchecks/{sc['id']}")).json()
    assert done["state"] == "passed" and done["result"] == "passed"
    assert done["recordings"] and all(r["data"]["sha256"] for r in done["recordings"])
    assert done["items"][-1]["type"] == "recording"
    location = next(i for i in done["items"] if i["type"] == "location")
    assert location["data"] == {"error": "User denied Geolocation"}
    panel = await (await client.get(f"/api/v1/alarms/{alarm['id']}/workflow")).json()
    types = [e["type"] for e in panel["timeline"]]
    for expected in ("spotcheck_challenge", "evidence", "spotcheck_result", "spotcheck_recording"):
        assert expected in types, (expected, types)
    evidence = panel["evidence"]
    assert [e["kind"] for e in evidence] == ["snapshot"]
    assert evidence[0]["sha256"] == shot["sha256"]


async def test_webhook_signed_and_retried(
    make_client: AppFactory, fake_clock: FakeClock, aiohttp_server: Any
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=500 if len(received) == 1 else 204)

    receiver = web.Application()
    receiver.router.add_post("/push", hook)
    server: TestServer = await aiohttp_server(receiver)
    client = await make_client(
        demo=True,
        spotcheck_webhook_url=str(server.make_url("/push")),
        spotcheck_webhook_secret="s3cret",
    )
    timers = client.app[keys.TIMERS]
    officer = await user(client, "street1")
    subject_id = demo_credentials(client)["users"]["subject1"]["subject_id"]
    resp = await client.post(
        "/api/v1/spotchecks",
        json={"subject_id": subject_id},
        headers={"X-CSRF-Token": officer.csrf},
    )
    sc = await resp.json()
    await timers.fire_due()
    assert len(received) == 1  # the receiver fails the first delivery
    await fake_clock.advance(4)
    await timers.fire_due()
    assert len(received) == 1  # the back-off is on the clock: 5 s
    await fake_clock.advance(1)
    await timers.fire_due()
    assert len(received) == 2
    await fake_clock.advance(30)
    await timers.fire_due()
    assert len(received) == 2  # delivered: no more tries
    for body, headers in received:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Center-Signature"], expected)
        payload = json.loads(body)
        assert payload["type"] == "spotcheck.ringing"
        assert payload["spotcheck"]["id"] == sc["id"]
        assert payload["join"]["room"] == sc["room_id"]
    assert [json.loads(b)["delivery"] for b, _ in received] == [
        f"{sc['id']}-1-1",
        f"{sc['id']}-1-2",
    ]
    record = await (await client.get(f"/api/v1/spotchecks/{sc['id']}")).json()
    tries = [(i["data"]["try"], i["data"]["ok"]) for i in record["items"] if i["type"] == "webhook"]
    assert tries == [(1, False), (2, True)]
