"""Rooms API: create/get/delete, who may do what, ICE servers from settings, OpenAPI,
metrics, the retention sweep on the app clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from center.clock import FakeClock
from center.models import AuditEntry
from media.recorder import RecordingInfo, RecordingState
from tests.conftest import AppFactory
from tests.web.conftest import create_room, media, user
from tests.web.ws.rtc_peer import wait_for
from web import keys


async def test_create_get_delete_echo_room(app_client: TestClient) -> None:
    duty = await user(app_client, "duty1")
    room = await create_room(app_client, duty, kind="echo")
    assert room["kind"] == "echo"
    assert room["ice_servers"] == []
    assert room["record"] is False
    resp = await app_client.get(f"/api/v1/rooms/{room['id']}")
    assert resp.status == 200
    assert (await resp.json())["id"] == room["id"]
    resp = await app_client.delete(
        f"/api/v1/rooms/{room['id']}", headers={"X-CSRF-Token": duty.csrf}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["ended"] is True
    resp = await app_client.get(f"/api/v1/rooms/{room['id']}")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "room_not_found"
    async with app_client.app[keys.SESSIONMAKER]() as session:
        actions = (
            await session.execute(
                select(AuditEntry.action).where(AuditEntry.target_id == room["id"])
            )
        ).scalars()
        assert set(actions) == {"media.room_created", "media.room_ended"}


async def test_call_room_invitations_and_scope(app_client: TestClient) -> None:
    futian = await user(app_client, "futian")
    room = await create_room(
        app_client, futian, kind="call", participants=["street1"], monitors=["duty1"]
    )
    assert room["record"] is True
    assert media(app_client).manager.room(room["id"]).max_video_bps is None  # no cap set
    capped = await create_room(app_client, futian, kind="call", max_video_kbps=400)
    assert media(app_client).manager.room(capped["id"]).max_video_bps == 400_000
    assert [p["name"] for p in room["participants"]] == ["street1"]
    assert [m["name"] for m in room["monitors"]] == ["duty1"]
    # an invitee may read it; an officer of another street may not even see it
    await user(app_client, "street1")
    assert (await app_client.get(f"/api/v1/rooms/{room['id']}")).status == 200
    street2 = await user(app_client, "street2")
    resp = await app_client.get(f"/api/v1/rooms/{room['id']}")
    assert resp.status == 404
    resp = await app_client.delete(
        f"/api/v1/rooms/{room['id']}", headers={"X-CSRF-Token": street2.csrf}
    )
    assert resp.status == 404
    # the city duty officer's jurisdiction holds the room
    duty = await user(app_client, "duty1")
    resp = await app_client.delete(
        f"/api/v1/rooms/{room['id']}", headers={"X-CSRF-Token": duty.csrf}
    )
    assert resp.status == 200


async def test_bad_requests(app_client: TestClient) -> None:
    street1 = await user(app_client, "street1")
    headers = {"X-CSRF-Token": street1.csrf}
    cases = [
        ({"kind": "party"}, "kind"),
        ({"kind": "call", "participants": "street2"}, "participants"),
        ({"kind": "call", "participants": ["nobody"]}, "nobody"),
        ({"kind": "call", "participants": ["street2"]}, "street2"),  # another street
        ({"kind": "call", "monitors": ["street2"]}, "street2"),  # street may not monitor
        ({"kind": "echo", "participants": ["duty1"]}, "kind"),
        ({"kind": "call", "colour": "red"}, "colour"),
        ({"kind": "call", "max_video_kbps": -1}, "max_video_kbps"),
        ({"kind": "call", "max_video_kbps": "fast"}, "max_video_kbps"),
    ]
    for body, field in cases:
        resp = await app_client.post("/api/v1/rooms", json=body, headers=headers)
        assert resp.status == 422, (body, await resp.text())
        details = (await resp.json())["error"]["details"]
        # one 422 shape: details.fields maps a field path to its problem; an invitee's
        # problem is keyed by its position and names the user
        problems = " ".join(f"{k} {v}" for k, v in details["fields"].items())
        assert details["field"] in details["fields"] and field in problems, body
    resp = await app_client.post("/api/v1/rooms", json={"kind": "echo"})
    assert resp.status == 403  # no CSRF token
    assert not media(app_client).manager.rooms()


async def test_devices_and_keys_cannot_open_rooms(app_client: TestClient) -> None:
    creds = app_client.app[keys.DEMO]
    for token in (creds["wall_token"], creds["integration_key"]):
        resp = await app_client.post(
            "/api/v1/rooms",
            json={"kind": "echo"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 403, await resp.text()


async def test_ice_servers_come_from_settings(make_client: AppFactory) -> None:
    client = await make_client(
        demo=True,
        ice_servers="stun:stun.intranet:3478,turn:turn.intranet:3478?transport=udp",
        turn_secret="s3cret",
        turn_ttl_s=600,
    )
    duty = await user(client, "duty1")
    room = await create_room(client, duty, kind="echo")
    stun, turn = room["ice_servers"]
    assert stun == {"urls": ["stun:stun.intranet:3478"]}
    expiry, who = turn["username"].split(":", 1)
    now = client.app[keys.CLOCK].now()
    assert int(expiry) == int(now.timestamp()) + 600
    assert who.startswith("user:")
    digest = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()


async def test_metrics_show_forwarding_and_fallback(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(demo=True)
    text = await (await client.get("/metrics")).text()
    assert "center_media_forwarding_fallback 0" in text
    assert "center_media_rooms 0" in text
    assert "center_media_frames_in_total" in text
    data_dir = Path(client.app[keys.SETTINGS].data_dir).parent / "relay"
    relay = await make_client(demo=True, media_forwarding="relay", data_dir=str(data_dir))
    text = await (await relay.get("/metrics")).text()
    assert "center_media_forwarding_fallback 1" in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("encoded forwarding unavailable (disabled by settings)" in m for m in warnings)


async def test_retention_sweep_runs_on_the_app_clock(
    app_client: TestClient, fake_clock: FakeClock, tmp_path: Path
) -> None:
    service = media(app_client)
    settings = app_client.app[keys.SETTINGS]
    await wait_for(lambda: service.sweeps >= 1)  # the one at start
    old = tmp_path / "old.webm"
    old.write_bytes(b"\x1a\x45\xdf\xa3")
    ended = fake_clock.now() - timedelta(days=settings.recording_retention_days + 1)
    info = RecordingInfo(
        id="r" * 32,
        room_id="x",
        participant_id="p",
        path=old,
        started_at=ended - timedelta(minutes=5),
        state=RecordingState.FINISHED,
        ended_at=ended,
    )
    await service.manager.store.recording_finished(info)
    sweeps = service.sweeps
    await fake_clock.advance(settings.retention_sweep_s)
    await wait_for(lambda: service.sweeps > sweeps)  # the sweep itself awaits the database
    assert not old.exists()
    async with app_client.app[keys.SESSIONMAKER]() as session:
        actions = (
            await session.execute(select(AuditEntry.action).where(AuditEntry.target_id == info.id))
        ).scalars()
        assert "media.recording_deleted" in set(actions)
