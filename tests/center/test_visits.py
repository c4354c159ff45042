"""Visits on a real server and database, on the fake clock: the booking rules (lead time in
working days, quota, capacity of terminals and visit points, bans with their end date,
pending relatives, emergency path with a second approval), join codes (validity, single
use), cancellation freeing the slot, scope per prison, and the audit trail.

The fake clock starts on Wednesday 2026-11-25 09:00 in Shanghai, so with 5 working days of
lead time the earliest day is Wednesday 2026-12-02.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from center.clock import FakeClock
from center.identity import create_user
from center.models import AuditEntry, Role, User
from center.visits.demo import PRISON_A, PRISON_B
from center.visits.models import PrisonStaff, Relative
from tests.alerts.helpers import eventually
from tests.alerts.workflow_support import browser
from tests.conftest import AppFactory, login
from web import keys

LOCAL = "+08:00"


def at(day: str, hhmm: str = "10:00") -> str:
    return f"{day}T{hhmm}:00{LOCAL}"


async def relatives(client: TestClient, inmate_id: str) -> dict[str, int]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(select(Relative).where(Relative.inmate_id == inmate_id))
        return {r.name: r.id for r in rows}


async def post(
    client: Any, csrf: str, url: str, body: dict[str, Any], status: int = 200
) -> dict[str, Any]:
    resp = await client.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert resp.status == status, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def book(
    client: Any,
    csrf: str,
    inmate: str,
    names: list[str],
    starts_at: str,
    status: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    rel = await relatives(client if isinstance(client, TestClient) else extra.pop("app"), inmate)
    body = {"inmate_id": inmate, "relative_ids": [rel[n] for n in names], "starts_at": starts_at}
    return await post(client, csrf, "/api/v1/visits", {**body, **extra}, status)


def refused(answer: dict[str, Any], rule: str) -> dict[str, Any]:
    error = answer["error"]
    assert error["code"] == "booking_refused", error
    assert error["details"]["rule"] == rule, error
    return error  # type: ignore[no-any-return]


async def add_staff(client: TestClient, username: str, prison_id: str, now: datetime) -> str:
    """A second visit-staff member of a prison; returns the password."""
    async with client.app[keys.SESSIONMAKER]() as session:
        user = await create_user(
            session,
            username=username,
            password="secret-password-1",
            role=Role.VISIT_STAFF,
            jurisdiction_id="4403",
            display_name=username,
            actor="test",
            now=now,
        )
        await session.flush()
        session.add(PrisonStaff(user_id=user.id, prison_id=prison_id))
        await session.commit()
    return "secret-password-1"


async def test_lead_time_quota_and_cancel_frees_it(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "visit1")
    error = refused(
        await book(client, csrf, "inmate-1001", ["王秀英"], at("2026-12-01"), 409), "lead_time"
    )
    assert error["details"]["earliest"] == "2026-12-02" and "2026-12-02" in error["message"]
    first = await book(client, csrf, "inmate-1001", ["王秀英", "王丽"], at("2026-12-02"))
    assert first["state"] == "requested" and first["outcome"] is None
    assert first["prison_id"] == PRISON_A and first["approvals_needed"] == 1
    ends = datetime.fromisoformat(first["ends_at"]) - datetime.fromisoformat(first["starts_at"])
    assert ends == timedelta(minutes=25)
    assert [r["relationship"] for r in first["relatives"]] == ["母亲", "妹妹"]
    # once a month: December is taken, January is free
    error = refused(
        await book(client, csrf, "inmate-1001", ["张敏"], at("2026-12-20"), 409), "monthly_quota"
    )
    assert error["details"]["month"] == "2026-12"
    await book(client, csrf, "inmate-1001", ["张敏"], at("2027-01-06"))
    # a lawyer's visit is not counted
    lawyer = await book(client, csrf, "inmate-1001", ["张敏"], at("2026-12-21"), privileged=True)
    assert lawyer["privileged"] is True
    # cancelling gives the month (and the slot) back
    done = await post(client, csrf, f"/api/v1/visits/{first['id']}/cancel", {"reason": "家中有事"})
    assert done["state"] == "ended" and done["outcome"] == "cancelled"
    await book(client, csrf, "inmate-1001", ["王丽"], at("2026-12-20"))
    await post(client, csrf, f"/api/v1/visits/{first['id']}/cancel", {}, 409)


async def test_capacity_bans_and_relatives(demo_client: TestClient) -> None:
    client = demo_client
    csrf = await login(client, "visit1")
    slot = at("2026-12-02")
    one = await book(client, csrf, "inmate-1001", ["王秀英"], slot, visit_point_id="vp-futian-1")
    # the prison's one terminal is taken for an overlapping slot, free right after it
    refused(
        await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-02", "10:20"), 409),
        "terminal_busy",
    )
    await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-02", "10:25"))
    refused(
        await book(
            client, csrf, "inmate-1001", ["王丽"], at("2026-12-02", "10:10"), 409, privileged=True
        ),
        "inmate_busy",
    )
    # the visit point has one room: the other prison's visit at that time must go elsewhere
    async with browser(client, "visit2") as (other, csrf2):
        body = {
            "inmate_id": "inmate-2001",
            "relative_ids": list((await relatives(client, "inmate-2001")).values()),
            "starts_at": at("2026-12-02", "10:05"),
            "visit_point_id": "vp-futian-1",
        }
        refused(await post(other, csrf2, "/api/v1/visits", body, 409), "point_full")
        await post(client, csrf, f"/api/v1/visits/{one['id']}/cancel", {})
        freed = await post(other, csrf2, "/api/v1/visits", body, 201)
        assert freed["prison_id"] == PRISON_B
    # bans with their end date, pending verification, at most three relatives
    error = refused(
        await book(client, csrf, "inmate-1002", ["李桂兰", "李强"], slot, 409), "banned"
    )
    assert error["details"]["banned_until"].startswith("2027-01-09")
    assert "2027-01-09" in error["message"]
    await book(client, csrf, "inmate-1002", ["李桂兰"], at("2027-01-11"))
    refused(
        await book(client, csrf, "inmate-1001", ["王建军"], at("2027-02-03"), 409),
        "relative_pending",
    )
    refused(
        await book(
            client, csrf, "inmate-1001", ["王秀英", "王丽", "张敏", "王小明"], at("2027-02-03"), 409
        ),
        "max_relatives",
    )
    # a relative of another inmate is not one of this inmate's
    rel = await relatives(client, "inmate-1003")
    body = {"inmate_id": "inmate-1001", "relative_ids": [rel["陈芳"]], "starts_at": slot}
    await post(client, csrf, "/api/v1/visits", body, 404)


async def test_emergency_needs_a_second_approval(
    demo_client: TestClient, fake_clock: FakeClock
) -> None:
    client = demo_client
    password = await add_staff(client, "visit1b", PRISON_A, fake_clock.now())
    csrf = await login(client, "visit1")
    soon = (fake_clock.now() + timedelta(hours=2)).isoformat()
    refused(await book(client, csrf, "inmate-1002", ["李强"], soon, 409), "lead_time")
    visit = await book(client, csrf, "inmate-1002", ["李强"], soon, emergency=True)
    assert visit["emergency"] and visit["approvals_needed"] == 2
    step = await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    assert step["state"] == "requested" and step["approvals_needed"] == 1
    assert step["join_codes"] is None
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}, 409)
    csrf_b = await login(client, "visit1b", password)
    done = await post(client, csrf_b, f"/api/v1/visits/{visit['id']}/approve", {})
    assert done["state"] == "approved" and done["approvals_needed"] == 0
    assert done["approved_by"] == "user:visit1" and done["second_approved_by"] == "user:visit1b"
    assert len(done["join_codes"]) == 1


async def test_join_codes_window_and_single_use(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    # no lead time, so the slot is soon (a week on the fake clock runs the whole demo city)
    client = await make_client(demo=True, database_url=database_url, visit_lead_working_days=0)
    start = fake_clock.now() + timedelta(minutes=40)  # after the demo visit's slot
    csrf = await login(client, "visit1")
    visit = await book(client, csrf, "inmate-1001", ["王秀英", "王丽", "张敏"], start.isoformat())
    approved = await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {})
    assert approved["state"] == "approved"
    codes = approved["join_codes"]
    assert len(codes) == 3 and all(len(c["join_code"]) == 6 for c in codes)
    assert all(c["join_code"].isdigit() and c["join_url"].startswith("/join/") for c in codes)
    assert len({c["join_code"] for c in codes}) == 3
    again = await (await client.get(f"/api/v1/visits/{visit['id']}")).json()
    assert again["join_codes"] is None  # shown once, at approval
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}, 409)
    code = codes[0]["join_code"]
    early = await post(client, "", "/api/v1/visits/join", {"code": code}, 403)
    assert early["error"]["code"] == "code_not_valid_now"
    await post(client, "", "/api/v1/visits/join", {"code": "999999"}, 401)
    # 15 minutes before the slot the code starts to work
    await fake_clock.set(start - timedelta(minutes=15, seconds=1))
    await post(client, "", "/api/v1/visits/join", {"code": code}, 403)
    await fake_clock.advance(2)
    joined = await post(client, "", "/api/v1/visits/join", {"code": code})
    assert joined["visit_id"] == visit["id"] and joined["guest_token"]
    assert joined["relative_id"] == codes[0]["relative_id"]
    used = await post(client, "", "/api/v1/visits/join", {"code": code}, 409)
    assert used["error"]["code"] == "code_used"
    token = codes[1]["join_url"].removeprefix("/join/")
    by_link = await post(client, "", "/api/v1/visits/join", {"token": token})
    assert by_link["relative_id"] == codes[1]["relative_id"]
    shown = await (await client.get(f"/api/v1/visits/{visit['id']}")).json()
    assert [r["joined_at"] is not None for r in shown["relatives"]] == [True, True, False]
    # after the slot the third code is refused
    await fake_clock.set(start + timedelta(minutes=25))
    late = await post(client, "", "/api/v1/visits/join", {"code": codes[2]["join_code"]}, 403)
    assert late["error"]["code"] == "code_not_valid_now"

    # never admitted: the no-show timer (due 10 minutes into the slot) ends it; it runs as
    # the clock passes its due time, beside this request, so wait for its commit
    async def ended_as_no_show() -> bool:
        record = await (await client.get(f"/api/v1/visits/{visit['id']}")).json()
        return bool(record["state"] == "ended" and record["outcome"] == "no_show")

    await eventually(ended_as_no_show)
    # the trail: who booked, approved, and each code's use
    async with client.app[keys.SESSIONMAKER]() as session:
        trail = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target_type == "visit", AuditEntry.target_id == str(visit["id"]))
                .order_by(AuditEntry.id)
            )
        )
    assert [(e.action, e.actor) for e in trail][:2] == [
        ("visit.book", "user:visit1"),
        ("visit.approve", "user:visit1"),
    ]
    # never admitted: it ended as a no-show 10 minutes into the slot
    assert [e.action for e in trail[2:]] == ["visit.join", "visit.join", "visit.no_show"]


async def test_cancelled_codes_and_refusal(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0)
    csrf = await login(client, "visit1")
    start = fake_clock.now() + timedelta(minutes=40)  # after the demo visit's slot
    visit = await book(client, csrf, "inmate-1001", ["王秀英"], start.isoformat())
    codes = (await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}))["join_codes"]
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/cancel", {"reason": "监狱安排调整"})
    await fake_clock.set(start)
    answer = await post(client, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]}, 403)
    assert answer["error"]["details"]["state"] == "ended"
    other = await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-09"))
    await post(client, csrf, f"/api/v1/visits/{other['id']}/refuse", {"reason": ""}, 422)
    done = await post(client, csrf, f"/api/v1/visits/{other['id']}/refuse", {"reason": "材料不全"})
    assert (done["state"], done["outcome"], done["reason"]) == ("ended", "refused", "材料不全")
    await post(client, csrf, f"/api/v1/visits/{other['id']}/approve", {}, 409)
    async with client.app[keys.SESSIONMAKER]() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target_type == "visit")
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["visit.book", "visit.approve", "visit.cancel", "visit.book", "visit.refuse"]


async def test_scope_per_prison(demo_client: TestClient) -> None:
    client = demo_client
    csrf = await login(client, "visit1")
    mine = await book(client, csrf, "inmate-1001", ["王秀英"], at("2026-12-02"))
    # visit1 cannot book for the other prison's inmate
    rel = await relatives(client, "inmate-2001")
    body = {
        "inmate_id": "inmate-2001",
        "relative_ids": list(rel.values()),
        "starts_at": at("2026-12-03"),
    }
    await post(client, csrf, "/api/v1/visits", body, 404)
    async with browser(client, "visit2") as (other, csrf2):
        assert (await other.get(f"/api/v1/visits/{mine['id']}")).status == 404
        listed = await (await other.get("/api/v1/visits")).json()
        assert listed["total"] == 0
        assert (await other.get(f"/api/v1/visits?prison_id={PRISON_A}")).status == 404
        for action, extra in (("approve", {}), ("refuse", {"reason": "x"}), ("cancel", {})):
            await post(other, csrf2, f"/api/v1/visits/{mine['id']}/{action}", extra, 404)
        theirs = await post(other, csrf2, "/api/v1/visits", body, 201)
    listed = await (await client.get("/api/v1/visits?date=2026-12-02")).json()
    assert [v["id"] for v in listed["items"]] == [mine["id"]]
    assert (await client.get(f"/api/v1/visits/{theirs['id']}")).status == 404
    # staff of other roles: street officers have no visits at all; the duty desk sees both
    await login(client, "street1")
    assert (await client.get("/api/v1/visits")).status == 403
    await login(client, "duty1")
    everything = await (await client.get("/api/v1/visits")).json()
    assert everything["total"] == 3  # with the demo visit
    async with client.app[keys.SESSIONMAKER]() as session:
        assert await session.scalar(select(User.id).where(User.username == "visit2"))


async def test_csv_and_month_figures(demo_client: TestClient) -> None:
    client = demo_client
    csrf = await login(client, "visit1")
    first = await book(client, csrf, "inmate-1001", ["王秀英"], at("2026-12-02"))
    await post(client, csrf, f"/api/v1/visits/{first['id']}/cancel", {"reason": "=HYPERLINK(1)"})
    second = await book(client, csrf, "inmate-1003", ["陈芳"], at("2026-12-03"))
    await post(client, csrf, f"/api/v1/visits/{second['id']}/refuse", {"reason": "材料不全"})
    third = await book(
        client, csrf, "inmate-1001", ["王丽"], at("2026-12-04"), visit_point_id="vp-futian-1"
    )
    resp = await client.get("/api/v1/visits.csv?state=ended")
    assert resp.status == 200 and resp.content_type == "text/csv"
    lines = (await resp.text()).splitlines()
    assert lines[0].startswith("id,prison_id,inmate_id,visit_point_id,starts_at")
    assert [line.split(",")[0] for line in lines[1:]] == [str(second["id"]), str(first["id"])]
    assert lines[2].endswith(",'=HYPERLINK(1)")  # a formula is never run by a spreadsheet
    figures = await (await client.get("/api/v1/visits/figures?month=2026-12")).json()
    assert figures["by_prison"] == [
        {
            "id": PRISON_A,
            "booked": 3,
            "held": 0,
            "completed": 0,
            "terminated": 0,
            "no_show": 0,
            "cancelled": 1,
            "refused": 1,
            # no visit was held, so none was graded (tests/center/test_visit_live.py)
            "median_quality": None,
            "median_quality_relatives": None,
            "median_quality_inmate": None,
        }
    ]
    assert [(f["id"], f["booked"]) for f in figures["by_visit_point"]] == [("vp-futian-1", 1)]
    assert third["visit_point_id"] == "vp-futian-1"
    assert (await client.get("/api/v1/visits/figures?month=2026-13")).status == 422
    async with browser(client, "visit2") as (other, _):
        theirs = await (await other.get("/api/v1/visits/figures?month=2026-12")).json()
        assert theirs["by_prison"] == []
        assert len((await (await other.get("/api/v1/visits.csv")).text()).splitlines()) == 1


async def test_unknown_codes_are_throttled_per_address(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """Six digits are a million codes: a phone that keeps guessing is held off (429 with
    Retry-After), while a relative at another address with the right code gets in."""
    client = await make_client(
        demo=True, login_max_failures=3, login_lockout_s=60, trusted_proxies="127.0.0.1"
    )
    code = client.app[keys.DEMO]["visit"]["join_codes"][0]
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    for expected in (401, 401, 429):
        resp = await client.post("/api/v1/visits/join", json={"code": "000000"}, headers=guesser)
        assert resp.status == expected, await resp.text()
    assert int(resp.headers["Retry-After"]) == 60
    assert (await resp.json())["error"]["code"] == "too_many_attempts"
    # locked: even the right code from the guessing address waits, and is not spent
    resp = await client.post("/api/v1/visits/join", json={"code": code}, headers=guesser)
    assert resp.status == 429
    # another address is not held up by the guesser
    resp = await client.post(
        "/api/v1/visits/join", json={"code": "000001"}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert resp.status == 401
    # after the lockout the address may try again, and the right code works
    await fake_clock.advance(61)
    resp = await client.post("/api/v1/visits/join", json={"code": code}, headers=guesser)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["guest_token"].startswith("vg_")


async def test_the_kiosk_reads_its_day_and_a_guest_may_check_its_network(
    make_client: AppFactory,
) -> None:
    """What the pages stand on: /terminal lists the prison's visits with its device token;
    /join runs the echo-room check with the guest token (an echo room, never a call)."""
    client = await make_client(demo=True)
    creds = client.app[keys.DEMO]
    terminal = {"Authorization": f"Bearer {creds['terminal_token']}"}
    page = await (await client.get("/api/v1/visits", headers=terminal)).json()
    assert creds["visit"]["id"] in [v["id"] for v in page["items"]]
    resp = await client.post("/api/v1/visits", json={}, headers=terminal)
    assert resp.status == 403  # a kiosk books nothing
    joined = await post(
        client, "", "/api/v1/visits/join", {"code": creds["visit"]["join_codes"][0]}
    )
    guest = {"Authorization": f"Bearer {joined['guest_token']}"}
    resp = await client.post("/api/v1/rooms", json={"kind": "echo"}, headers=guest)
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/v1/rooms", json={"kind": "call"}, headers=guest)
    assert resp.status == 403
