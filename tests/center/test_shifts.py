"""Shifts (sign-on/off, handover, staffing warning) and evidence uploads."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.alerts.helpers import eventually
from tests.alerts.workflow_support import browser, raise_alarm
from tests.conftest import AppFactory, login
from tests.web.test_api_workflow import armed
from web import keys

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"x" * 100


async def test_sign_on_off_handover_and_staffing_events(
    demo_client: TestClient, fake_clock: FakeClock
) -> None:
    client = demo_client
    seen: list[dict[str, Any]] = []
    client.app[keys.BUS].subscribe("duty", lambda m: seen.append({"type": m.type, **m.data}))
    csrf = await login(client, "duty1")
    resp = await client.get("/api/v1/duty/staffing")
    assert await resp.json() == {
        "jurisdiction_id": "4403",
        "on_duty": 0,
        "minimum": 2,
        "warning": True,
        "officers": [],
    }
    resp = await client.post("/api/v1/duty/sign-on", json={}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    resp = await client.post("/api/v1/duty/sign-on", json={}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 409
    async with browser(client, "duty2") as (other, csrf2):
        resp = await other.post("/api/v1/duty/sign-on", json={}, headers={"X-CSRF-Token": csrf2})
        assert resp.status == 200
        assert seen[-1] == {
            "type": "duty.staffing",
            "jurisdiction_id": "4403",
            "on_duty": 2,
            "minimum": 2,
            "warning": False,
            "officers": ["duty1", "duty2"],
        }
        # Signing off needs a handover note.
        resp = await other.post("/api/v1/duty/sign-off", json={}, headers={"X-CSRF-Token": csrf2})
        assert resp.status == 422
        resp = await other.post(
            "/api/v1/duty/sign-off",
            json={"handover_note": "3 起越界报警待区局回复"},
            headers={"X-CSRF-Token": csrf2},
        )
        assert resp.status == 200
    assert seen[-1]["on_duty"] == 1 and seen[-1]["warning"] is True
    resp = await client.get("/api/v1/duty/on-duty")
    body = await resp.json()
    assert [s["username"] for s in body["items"]] == ["duty1"]
    assert body["handovers"][0]["handover_note"] == "3 起越界报警待区局回复"
    # a street officer may read staffing but not manage the roster
    async with browser(client, "street1") as (street, s_csrf):
        assert (await street.get("/api/v1/duty/staffing")).status == 200
        resp = await street.post(
            "/api/v1/duty/shifts",
            json={"starts_at": "2026-11-25T00:00:00Z", "ends_at": "2026-11-25T08:00:00Z"},
            headers={"X-CSRF-Token": s_csrf},
        )
        assert resp.status == 403


async def test_roster_shift_end_signs_off_a_forgotten_officer(
    demo_client: TestClient, fake_clock: FakeClock
) -> None:
    client = demo_client
    csrf = await login(client, "duty1")
    resp = await client.post(
        "/api/v1/duty/shifts",
        json={
            "starts_at": "2026-11-25T00:00:00+00:00",
            "ends_at": "2026-11-25T02:00:00+00:00",
            "officers": ["duty1", "duty2"],
            "note": "白班",
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201
    shift = await resp.json()
    resp = await client.get("/api/v1/duty/shifts")
    assert [s["id"] for s in (await resp.json())["items"]] == [shift["id"]]
    bad = await client.post(
        "/api/v1/duty/shifts",
        json={"starts_at": "2026-11-25T02:00:00+00:00", "ends_at": "2026-11-25T01:00:00+00:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status == 422
    resp = await client.post(
        "/api/v1/duty/sign-on", json={"shift_id": shift["id"]}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 200
    await fake_clock.advance(minutes=60 + 29)  # the shift ends at 02:00, grace 30 min
    assert (await (await client.get("/api/v1/duty/staffing")).json())["on_duty"] == 1
    await fake_clock.advance(minutes=1)

    async def signed_off() -> bool:
        return (await (await client.get("/api/v1/duty/staffing")).json())["on_duty"] == 0

    await eventually(signed_off)
    body = await (await client.get("/api/v1/duty/on-duty")).json()
    assert body["handovers"][0]["auto_signed_off"] is True


async def _upload(client: Any, csrf: str, alarm_id: int, data: bytes, name: str) -> Any:
    form = aiohttp.FormData()
    form.add_field("note", "现场照片")
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await client.post(
        f"/api/v1/alarms/{alarm_id}/evidence", data=form, headers={"X-CSRF-Token": csrf}
    )


async def test_evidence_upload_checks_type_and_size_and_lands_on_the_timeline(
    make_client: AppFactory,
) -> None:
    client = await make_client(demo=True, evidence_max_bytes=4096)
    csrf = await login(client, "duty1")
    a = await armed(client, (await raise_alarm(client))["id"])
    resp = await _upload(client, csrf, a["id"], PNG, "../../etc/photo.png")
    assert resp.status == 201, await resp.text()
    item = await resp.json()
    assert item["sha256"] == hashlib.sha256(PNG).hexdigest() and item["size"] == len(PNG)
    assert item["content_type"] == "image/png" and item["filename"] == "photo.png"
    resp = await _upload(client, csrf, a["id"], PDF, "report.pdf")
    assert resp.status == 201 and (await resp.json())["content_type"] == "application/pdf"
    # by content, not by name
    resp = await _upload(client, csrf, a["id"], b"MZ\x90\x00" + b"\x00" * 50, "photo.jpg")
    assert resp.status == 415
    resp = await _upload(client, csrf, a["id"], b"\xff\xd8\xff" + b"\x00" * 5000, "big.jpg")
    assert resp.status == 413
    resp = await client.get(item["url"])
    assert resp.status == 200 and await resp.read() == PNG
    assert resp.headers["X-Content-SHA256"] == item["sha256"]
    d = await (await client.get(f"/api/v1/alarms/{a['id']}/workflow")).json()
    ev = [e for e in d["timeline"] if e["type"] == "evidence"]
    assert [e["data"]["sha256"] for e in ev] == [item["sha256"], hashlib.sha256(PDF).hexdigest()]
    assert ev[0]["note"] == "现场照片" and len(d["evidence"]) == 2
    # another street sees neither the list nor the file
    async with browser(client, "street2") as (other, csrf2):
        assert (await other.get(item["url"])).status == 404
        assert (await other.get(f"/api/v1/alarms/{a['id']}/evidence")).status == 404
        resp = await _upload(other, csrf2, a["id"], PNG, "x.png")
        assert resp.status == 404
