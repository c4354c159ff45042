"""Visit notices through a real local webhook receiver, on the fake clock: the approval
sends each relative its code and link, signed, with a stable delivery id; the reminder goes
at 18:00 local on the day before; refusal and cancellation tell the relatives (and drop the
reminder); a failing gateway is retried with back-off, then the notice is ``failed``;
nothing is sent twice and the code is never stored in clear.

The fake clock starts on Wednesday 2026-11-25 09:00 in Shanghai; slots are on 2026-12-02
(the reminder test starts at 17:58 the day before its slot: long clock jumps are slow).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from center.clock import FakeClock
from center.timers import Timer
from center.visits.models import VisitNotice
from tests.center.test_visits import at, book, post, relatives
from tests.conftest import AppFactory, login
from web import keys

SECRET = "s3cret-for-the-gateway"
BASE = "https://visits.example.org"


class Gateway:
    """The SMS/WeChat gateway: records each post; ``fail`` first answers are 500."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.posts: list[tuple[dict[str, Any], dict[str, str], bytes]] = []

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts.append((json.loads(body), dict(request.headers), body))
        return web.Response(status=500 if len(self.posts) <= self.fail else 204)


Start = Callable[..., Awaitable[tuple[TestClient, Gateway]]]


@pytest.fixture
async def start(make_client: AppFactory, aiohttp_server: Any) -> Start:
    async def factory(fail: int = 0, **settings: Any) -> tuple[TestClient, Gateway]:
        gateway = Gateway(fail)
        receiver = web.Application()
        receiver.router.add_post("/sms", gateway.hook)
        server: TestServer = await aiohttp_server(receiver, host="127.0.0.1")
        client = await make_client(
            demo=True,
            visit_notify_url=str(server.make_url("/sms")),
            visit_notify_secret=SECRET,
            visit_notify_base_url=BASE,
            **settings,
        )
        return client, gateway

    return factory


async def settle(client: TestClient, tries: int) -> None:
    """Fire due timers until ``tries`` deliveries have been made and recorded."""
    notifier = client.app[keys.VISIT_NOTIFIER]
    for _ in range(300):
        await client.app[keys.TIMERS].fire_due()
        if notifier.sent + notifier.failed >= tries:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{notifier.sent + notifier.failed} deliveries, wanted {tries}")


async def quiet(client: TestClient) -> None:
    """Fire whatever is due and let any delivery finish (to show none was made)."""
    for _ in range(5):
        await client.app[keys.TIMERS].fire_due()
        await asyncio.sleep(0.02)


def signed(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Center-Signature"], expected)


async def notices(client: TestClient, visit_id: int) -> list[dict[str, Any]]:
    record = await (await client.get(f"/api/v1/visits/{visit_id}")).json()
    return record["notices"]  # type: ignore[no-any-return]


async def test_approval_sends_codes_and_the_reminder_the_evening_before(start: Start) -> None:
    # 17:58 in Shanghai on the day before the slot (no lead time): the reminder is near
    clock = FakeClock(datetime(2026, 11, 25, 9, 58, tzinfo=UTC))
    client, gateway = await start(clock=clock, visit_lead_working_days=0)
    csrf = await login(client, "visit1")
    rel = await relatives(client, "inmate-1001")
    visit = await book(client, csrf, "inmate-1001", ["王秀英", "王丽"], at("2026-11-26"))
    approved = await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    codes = {c["relative_id"]: c for c in approved["join_codes"]}
    await settle(client, 2)
    assert len(gateway.posts) == 2
    for payload, headers, body in gateway.posts:
        assert signed(headers, body)
        relative_id = payload["relative"]["id"]
        delivery = f"visit-{visit['id']}-approved-{relative_id}"
        assert headers["X-Center-Delivery"] == delivery == payload["delivery"]
        assert payload["type"] == "visit.approved" and payload["try"] == 1
        assert payload["join_code"] == codes[relative_id]["join_code"]
        assert payload["join_url"] == BASE + codes[relative_id]["join_url"]
        assert payload["join_code"] in payload["text"] and "王建国" in payload["text"]
        assert payload["relative"]["phone"].startswith("1700900")
        assert payload["visit"]["local_time"] == "2026-11-26 10:00"
    assert {p["relative"]["id"] for p, _, _ in gateway.posts} == {rel["王秀英"], rel["王丽"]}
    shown = await notices(client, visit["id"])
    assert sorted((n["kind"], n["state"]) for n in shown) == [
        ("approved", "sent"),
        ("approved", "sent"),
        ("reminder", "pending"),
        ("reminder", "pending"),
    ]
    reminder_at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    assert {datetime.fromisoformat(n["due_at"]) for n in shown if n["kind"] == "reminder"} == {
        reminder_at
    }
    # the code is nowhere in clear: not in the notices, not in the timers
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = list(await session.scalars(select(VisitNotice)))
        timers = list(await session.scalars(select(Timer)))
    stored = json.dumps(
        [[r.sealed, r.reason, r.last_error] for r in rows] + [t.payload for t in timers]
    )
    for code in codes.values():
        assert code["join_code"] not in stored
        assert code["join_url"].removeprefix("/join/") not in stored
    # the reminder: not a second before 18:00 the day before, then once
    await clock.set(reminder_at - timedelta(seconds=1))
    await quiet(client)
    assert len(gateway.posts) == 2
    await clock.set(reminder_at)
    await settle(client, 4)
    reminders = gateway.posts[2:]
    assert {p["type"] for p, _, _ in reminders} == {"visit.reminder"}
    assert all(signed(h, b) and "join_code" not in p for p, h, b in reminders)
    assert {h["X-Center-Delivery"] for _, h, _ in reminders} == {
        f"visit-{visit['id']}-reminder-{rel['王秀英']}",
        f"visit-{visit['id']}-reminder-{rel['王丽']}",
    }
    await clock.advance(600)
    await quiet(client)
    assert len(gateway.posts) == 4  # nothing twice
    assert {n["state"] for n in await notices(client, visit["id"])} == {"sent"}


async def test_refusal_and_cancellation_tell_the_relatives(start: Start) -> None:
    client, gateway = await start()
    csrf = await login(client, "visit1")
    refused = await book(client, csrf, "inmate-1001", ["王秀英"], at("2026-12-02"))
    await post(client, csrf, f"/api/v1/visits/{refused['id']}/refuse", {"reason": "材料不全"})
    await settle(client, 1)
    payload, headers, body = gateway.posts[0]
    assert signed(headers, body) and payload["type"] == "visit.refused"
    assert payload["reason"] == "材料不全" and "材料不全" in payload["text"]
    assert headers["X-Center-Delivery"].startswith(f"visit-{refused['id']}-refused-")
    # approved, then cancelled: the cancellation goes out, the reminder is dropped
    visit = await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-02", "11:00"))
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    await settle(client, 2)
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/cancel", {"reason": "家中有事"})
    await settle(client, 3)
    assert [p["type"] for p, _, _ in gateway.posts] == [
        "visit.refused",
        "visit.approved",
        "visit.cancelled",
    ]
    assert gateway.posts[2][0]["reason"] == "家中有事"
    shown = {n["kind"]: n["state"] for n in await notices(client, visit["id"])}
    assert shown == {"approved": "sent", "reminder": "cancelled", "cancelled": "sent"}


async def test_a_failing_gateway_is_retried_then_failed(
    start: Start, fake_clock: FakeClock
) -> None:
    client, gateway = await start(fail=99, visit_notify_attempts=3)
    csrf = await login(client, "visit1")
    visit = await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-02"))
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    await settle(client, 1)
    await fake_clock.advance(29)
    await quiet(client)
    assert len(gateway.posts) == 1  # the back-off is on the clock: 30 s, then 60 s
    await fake_clock.advance(1)
    await settle(client, 2)
    await fake_clock.advance(60)
    await settle(client, 3)
    await fake_clock.advance(600)
    await quiet(client)
    assert [p["try"] for p, _, _ in gateway.posts] == [1, 2, 3]
    assert len({h["X-Center-Delivery"] for _, h, _ in gateway.posts}) == 1
    approved = [n for n in await notices(client, visit["id"]) if n["kind"] == "approved"]
    assert approved[0]["state"] == "failed" and approved[0]["attempts"] == 3
    assert approved[0]["last_status"] == 500 and approved[0]["last_error"] == "HTTP 500"
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(VisitNotice, approved[0]["id"])
        assert row is not None and row.sealed == ""


async def test_a_gateway_back_after_failures_gets_the_notice_once(
    start: Start, fake_clock: FakeClock
) -> None:
    client, gateway = await start(fail=1)
    csrf = await login(client, "visit1")
    visit = await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-02"))
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    await settle(client, 1)
    await fake_clock.advance(30)
    await settle(client, 2)
    await fake_clock.advance(300)
    await quiet(client)
    assert [p["try"] for p, _, _ in gateway.posts] == [1, 2]
    assert gateway.posts[0][0]["join_code"] == gateway.posts[1][0]["join_code"]
    approved = [n for n in await notices(client, visit["id"]) if n["kind"] == "approved"]
    assert approved[0]["state"] == "sent" and approved[0]["attempts"] == 2


async def test_without_a_gateway_notices_are_recorded_skipped(demo_client: TestClient) -> None:
    client = demo_client
    csrf = await login(client, "visit1")
    visit = await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-02"))
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    shown = await notices(client, visit["id"])
    assert sorted((n["kind"], n["state"]) for n in shown) == [
        ("approved", "skipped"),
        ("reminder", "skipped"),
    ]
    async with client.app[keys.SESSIONMAKER]() as session:
        assert all(r.sealed == "" for r in await session.scalars(select(VisitNotice)))
