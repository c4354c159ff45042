"""A relative's own booking without an account (ID number + phone), on the fake clock:
what they may book (inmates, companions, free slots), a request that lands ``requested``
for staff, the staff booking's refusal messages, wrong identities refused and throttled,
and cancelling one's own request frees the slot.

The fake clock starts on Wednesday 2026-11-25 09:00 in Shanghai: the earliest day is
Wednesday 2026-12-02.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from center.models import AuditEntry
from tests.center.test_visits import at, relatives
from tests.conftest import AppFactory, login
from web import keys

MOTHER = {"id_number": "440304195503129024", "phone": "170 0900 9024"}  # 王秀英, inmate-1001


async def send(client: TestClient, url: str, body: dict[str, Any], status: int) -> dict[str, Any]:
    resp = await client.post(url, json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_lookup_request_refusal_and_cancel(demo_client: TestClient) -> None:
    client = demo_client
    resp = await client.get("/api/v1/visits/booking", params=MOTHER)
    assert resp.status == 200, await resp.text()
    booking = await resp.json()
    assert booking["earliest"] == "2026-12-02" and booking["id_last4"] == "9024"
    [inmate] = booking["inmates"]
    assert inmate["id"] == "inmate-1001" and inmate["me"]["status"] == "approved"
    assert "王丽" in [o["name"] for o in inmate["others"]]
    first = datetime.fromisoformat(inmate["slots"][0]["starts_at"])
    assert first == datetime.fromisoformat(at("2026-12-02", "09:00"))
    rel = await relatives(client, "inmate-1001")
    # too early: the staff booking's rule and message
    error = (
        await send(
            client,
            "/api/v1/visits/requests",
            {**MOTHER, "inmate_id": "inmate-1001", "starts_at": at("2026-12-01")},
            409,
        )
    )["error"]
    assert error["details"]["rule"] == "lead_time" and "2026-12-02" in error["message"]
    body = {
        **MOTHER,
        "inmate_id": "inmate-1001",
        "starts_at": at("2026-12-02"),
        "relative_ids": [rel["王丽"]],
    }
    made = await send(client, "/api/v1/visits/requests", body, 201)
    assert made["state"] == "requested" and made["cancellable"] is True
    assert [r["name"] for r in made["relatives"]] == ["王秀英", "王丽"]
    # staff see it to approve; the month is taken now
    csrf = await login(client, "visit1")
    staff = await (await client.get(f"/api/v1/visits/{made['id']}")).json()
    assert staff["state"] == "requested" and staff["booked_by"] == f"family:relative{rel['王秀英']}"
    again = {**body, "starts_at": at("2026-12-03"), "relative_ids": []}
    error = (await send(client, "/api/v1/visits/requests", again, 409))["error"]
    assert error["details"]["rule"] == "monthly_quota"
    slots = (await (await client.get("/api/v1/visits/booking", params=MOTHER)).json())["inmates"]
    assert not [s for s in slots[0]["slots"] if s["starts_at"].startswith("2026-12")]
    # someone else's visit is not theirs to cancel
    other = {"id_number": "440304199303039044", "phone": "17009009044"}  # 陈芳, inmate-1003
    await send(client, f"/api/v1/visits/requests/{made['id']}/cancel", other, 404)
    done = await send(
        client, f"/api/v1/visits/requests/{made['id']}/cancel", {**MOTHER, "reason": "有事"}, 200
    )
    assert done["state"] == "ended" and done["outcome"] == "cancelled" and not done["cancellable"]
    await send(client, "/api/v1/visits/requests", again, 201)  # the month is free again
    mine = (await (await client.get("/api/v1/visits/booking", params=MOTHER)).json())["requests"]
    assert [r["outcome"] for r in mine] == [None, "cancelled"]
    async with client.app[keys.SESSIONMAKER]() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.actor.like("family:%"))
            )
        )
    assert {"visit.lookup", "visit.request", "visit.cancel"} <= set(actions)
    assert csrf


async def test_wrong_identity_refused_and_throttled(make_client: AppFactory) -> None:
    client = await make_client(demo=True, login_max_failures=2, login_window_s=600)
    wrong = {**MOTHER, "phone": "13800000000"}
    resp = await client.get("/api/v1/visits/booking", params=wrong)
    assert resp.status == 401
    request = {**wrong, "inmate_id": "inmate-1001", "starts_at": at("2026-12-02")}
    resp = await client.post("/api/v1/visits/requests", json=request)
    assert resp.status in (401, 429)
    resp = await client.get("/api/v1/visits/booking", params=MOTHER)
    assert resp.status == 429 and resp.headers.get("Retry-After")  # even the right one now
    resp = await client.get("/api/v1/visits/booking", params={**MOTHER, "id_number": "12"})
    assert resp.status == 422
    # not registered for that inmate
    resp = await (await make_client(demo=True)).post(
        "/api/v1/visits/requests",
        json={**MOTHER, "inmate_id": "inmate-1003", "starts_at": at("2026-12-02")},
    )
    assert resp.status == 404
