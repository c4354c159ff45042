"""Visit records on a real server and database: staff register a relative (pending), attach
the photo and the proof of relationship, verify, and only then book them; scope per prison,
files checked by content, and every change on the audit chain with before and after."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp
from sqlalchemy import select

from center.models import AuditEntry
from center.visits.demo import PRISON_A
from tests.alerts.workflow_support import browser
from tests.center.test_visits import at, post, relatives
from tests.conftest import AppFactory, login
from tests.face_images import astronaut, jpeg
from web import keys

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def resident_id(body17: str) -> str:
    """A resident ID number with its GB 11643 check digit."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return (
        body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]
    )


def upload(data: bytes, name: str = "f") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


async def put(client: Any, csrf: str, url: str, data: bytes, status: int = 200) -> dict[str, Any]:
    resp = await client.put(url, data=upload(data), headers={"X-CSRF-Token": csrf})
    assert resp.status == status, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_register_attach_verify_then_book(make_client: AppFactory) -> None:
    client = await make_client(demo=True, evidence_max_bytes=200_000)
    csrf = await login(client, "visit1")
    listed = await (await client.get("/api/v1/visits/inmates")).json()
    ids = [i["id"] for i in listed["inmates"]]
    assert "inmate-1001" in ids and "inmate-2001" not in ids  # another prison's inmate
    mother = next(r for i in listed["inmates"] for r in i["relatives"] if r["name"] == "王秀英")
    assert mother["status"] == "approved" and mother["bookable"] and "id_number" not in mother
    found = await (await client.get("/api/v1/visits/inmates", params={"q": "李桂兰"})).json()
    assert [i["id"] for i in found["inmates"]] == ["inmate-1002"]

    url = "/api/v1/visits/inmates/inmate-1003/relatives"
    number = resident_id("44030419700312902")
    typo = number[:-1] + ("0" if number[-1] != "0" else "1")
    bad = await post(
        client, csrf, url, {"name": "陈大", "relationship": "父亲", "id_number": typo}, 422
    )
    assert bad["error"]["details"]["field"] == "id_number"
    assert "check digit" in bad["error"]["message"]
    body = {"name": "陈大", "relationship": "父亲", "id_number": number, "phone": "13800001111"}
    rel = await post(client, csrf, url, body, 201)
    assert (rel["status"], rel["id_last4"], rel["bookable"]) == ("pending", number[-4:], False)
    again = await post(client, csrf, url, {**body, "name": "别名"}, 409)
    assert again["error"]["details"]["field"] == "id_number"

    # a pending relative cannot be booked, and says why
    booking = {
        "inmate_id": "inmate-1003",
        "relative_ids": [rel["id"]],
        "starts_at": at("2026-12-03"),
    }
    refused = await post(client, csrf, "/api/v1/visits", booking, 409)
    assert refused["error"]["details"]["rule"] == "relative_pending"
    # verifying needs both files
    early = await post(client, csrf, f"/api/v1/visits/relatives/{rel['id']}/verify", {}, 409)
    assert early["error"]["details"]["missing"] == ["photo", "proof"]

    base = f"/api/v1/visits/relatives/{rel['id']}"
    assert (await put(client, csrf, f"{base}/photo", b"not an image", 415))["error"]
    assert (await put(client, csrf, f"{base}/photo", PDF, 415))["error"]  # a proof, not a face
    assert await put(client, csrf, f"{base}/photo", b"\xff\xd8\xff" + b"0" * 300_000, 413)
    photo = jpeg(astronaut())
    shown = await put(client, csrf, f"{base}/photo", photo)
    assert shown["has_photo"] and not shown["has_proof"]
    assert (await post(client, csrf, f"{base}/verify", {}, 409))["error"]["details"]["missing"] == [
        "proof"
    ]
    assert (await put(client, csrf, f"{base}/proof", PDF))["has_proof"]
    got = await client.get(f"{base}/photo")
    assert got.status == 200 and got.content_type == "image/jpeg"
    assert await got.read() == photo
    assert got.headers["X-Content-SHA256"] == hashlib.sha256(photo).hexdigest()
    proof = await client.get(f"{base}/proof")
    assert proof.content_type == "application/pdf" and await proof.read() == PDF

    verified = await post(client, csrf, f"{base}/verify", {})
    assert (verified["status"], verified["bookable"]) == ("approved", True)
    assert (await post(client, csrf, f"{base}/verify", {}, 409))["error"]
    visit = await post(client, csrf, "/api/v1/visits", booking, 201)
    assert visit["relatives"][0]["photo_url"] == f"{base}/photo"

    async with client.app[keys.SESSIONMAKER]() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target_type == "relative", AuditEntry.target_id == str(rel["id"]))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [e.action for e in entries] == [
        "visit.relative.register",
        "visit.relative.photo",
        "visit.relative.proof",
        "visit.relative.verify",
    ]
    verify_details = json.loads(entries[-1].details)
    assert verify_details["before"]["status"] == "pending"
    assert verify_details["after"]["status"] == "approved"
    assert number not in "".join(str(e.details) for e in entries)  # never the ID number


async def test_scope_files_and_bans(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "visit1")
    rel = (await relatives(client, "inmate-1002"))["李桂兰"]  # banned in the demo
    base = f"/api/v1/visits/relatives/{rel}"
    async with browser(client, "visit2") as (other, other_csrf):
        for method, url in (
            ("GET", base),
            ("GET", f"{base}/photo"),
            ("POST", f"{base}/verify"),
            ("POST", f"{base}/unban"),
        ):
            resp = await other.request(
                method, url, json={"reason": "x"}, headers={"X-CSRF-Token": other_csrf}
            )
            assert resp.status == 404, (method, url, await resp.text())
        resp = await other.post(
            "/api/v1/visits/inmates/inmate-1001/relatives",
            json={
                "name": "某",
                "relationship": "父亲",
                "id_number": resident_id("44030419700312902"),
            },
            headers={"X-CSRF-Token": other_csrf},
        )
        assert resp.status == 404
    missing = await client.get(f"{base}/photo")
    assert missing.status == 404
    assert (await post(client, csrf, f"{base}/unban", {"reason": " "}, 422))["error"]
    lifted = await post(client, csrf, f"{base}/unban", {"reason": "申诉成立"})
    assert (lifted["status"], lifted["banned_until"], lifted["bookable"]) == (
        "approved",
        None,
        True,
    )
    assert (await post(client, csrf, f"{base}/unban", {"reason": "again"}, 409))["error"]
    # hostile ids and bodies are 4xx, never 5xx
    for url in (
        "/api/v1/visits/relatives/0",
        "/api/v1/visits/relatives/99999999999",
        "/api/v1/visits/relatives/abc",
        "/api/v1/visits/relatives/١٢",
    ):
        assert 400 <= (await client.get(url)).status < 500
    resp = await client.put(
        f"{base}/photo", data=b"raw", headers={"X-CSRF-Token": csrf, "Content-Type": "image/jpeg"}
    )
    assert resp.status == 400
    for body in (
        {"name": "a\u0000b", "relationship": "父亲", "id_number": "1"},
        {"name": "a", "relationship": "父亲", "id_number": "x" * 18},
        {"name": "a", "relationship": "父亲", "id_number": "44030419701332902X"},
        {
            "name": "a",
            "relationship": "父亲",
            "id_number": resident_id("44030419700312902"),
            "phone": "call me",
        },
        {"name": "a", "relationship": "父亲"},
    ):
        resp = await client.post(
            "/api/v1/visits/inmates/inmate-1003/relatives",
            json=body,
            headers={"X-CSRF-Token": csrf},
        )
        assert resp.status == 422, (body, await resp.text())


async def test_each_prison_has_its_own_rules(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "visit1")
    listed = await (await client.get("/api/v1/visits/prisons")).json()
    assert [p["id"] for p in listed["prisons"]] == [PRISON_A]
    assert set(listed["prisons"][0]["own"].values()) == {None}
    assert listed["prisons"][0]["effective"]["visit_lead_working_days"] == 5
    url = f"/api/v1/visits/prisons/{PRISON_A}/rules"
    for bad in (
        {"visit_minutes": 0},
        {"visit_max_relatives": 11},
        {"lead": 1},
        {"visit_monthly_quota": "2"},
    ):
        resp = await client.put(url, json=bad, headers={"X-CSRF-Token": csrf})
        assert resp.status == 422, (bad, await resp.text())
    resp = await client.put(
        url,
        json={"visit_lead_working_days": 0, "visit_max_relatives": 1, "visit_minutes": 15},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200, await resp.text()
    rules = await resp.json()
    assert rules["own"]["visit_minutes"] == 15 and rules["own"]["visit_monthly_quota"] is None
    assert rules["effective"]["visit_monthly_quota"] == 1

    rel = await relatives(client, "inmate-1001")
    tomorrow = at("2026-11-26")  # the fake clock stands on Wednesday 2026-11-25
    two = {
        "inmate_id": "inmate-1001",
        "relative_ids": [rel["王秀英"], rel["王丽"]],
        "starts_at": tomorrow,
    }
    refused = await post(client, csrf, "/api/v1/visits", two, 409)
    assert refused["error"]["details"]["rule"] == "max_relatives"
    visit = await post(
        client, csrf, "/api/v1/visits", {**two, "relative_ids": [rel["王秀英"]]}, 201
    )
    assert visit["minutes"] == 15  # and the lead time of 0 working days let tomorrow through

    # the other prison keeps the settings' rules, and cannot change this prison's
    async with browser(client, "visit2") as (other, other_csrf):
        resp = await other.put(
            url, json={"visit_minutes": 60}, headers={"X-CSRF-Token": other_csrf}
        )
        assert resp.status == 404
        b_rel = await relatives(client, "inmate-2001")
        resp = await other.post(
            "/api/v1/visits",
            json={
                "inmate_id": "inmate-2001",
                "relative_ids": [b_rel["赵红"]],
                "starts_at": tomorrow,
            },
            headers={"X-CSRF-Token": other_csrf},
        )
        assert resp.status == 409 and (await resp.json())["error"]["details"]["rule"] == "lead_time"

    cleared = await client.put(url, json={"visit_minutes": None}, headers={"X-CSRF-Token": csrf})
    assert (await cleared.json())["effective"]["visit_minutes"] == 25
    async with client.app[keys.SESSIONMAKER]() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "visit.prison.rules")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert len(entries) == 2
    assert json.loads(entries[1].details)["before"]["visit_minutes"] == 15
    assert json.loads(entries[1].details)["after"]["visit_minutes"] is None
