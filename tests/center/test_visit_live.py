"""The visit on the fake clock: admit (with or without a monitor), warnings at 5 and 1
minute in order and the end at the limit, no-show, warning texts and mute, termination with
a ban, and the privileged visit (its room neither recorded nor monitored)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from center.bus import BusMessage
from center.clock import FakeClock
from center.models import AuditEntry, User
from center.topics import Topic
from center.visits.demo import PRISON_A
from center.visits.models import PrisonTerminal, VisitParty
from media.policy import Role as MediaRole
from media.quality import Grade, QualitySample
from tests.center.test_visits import book, post, refused
from tests.conftest import AppFactory, login
from web import keys
from web.components import MEDIA, TIMERS


async def approved_visit(
    client: TestClient, fake_clock: FakeClock, csrf: str, **extra: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], datetime]:
    # after the demo visit (the prison's one terminal is its until 01:27 UTC)
    start = fake_clock.now() + timedelta(minutes=40)
    visit = await book(client, csrf, "inmate-1001", ["王秀英", "王丽"], start.isoformat(), **extra)
    codes = (await post(client, csrf, f"/api/v1/visits/{visit['id']}/approve", {}))["join_codes"]
    return visit, codes, start


async def waiting(
    client: TestClient, fake_clock: FakeClock, **extra: Any
) -> tuple[str, dict[str, Any], datetime]:
    csrf = await login(client, "visit1")
    visit, codes, start = await approved_visit(client, fake_clock, csrf, **extra)
    await fake_clock.set(start - timedelta(minutes=1))
    joined = await post(client, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]})
    shown = await (await client.get(f"/api/v1/visits/{visit['id']}")).json()
    assert shown["state"] == "waiting" and shown["room_id"] and joined["visit_id"] == visit["id"]
    return csrf, shown, start


async def tick(client: TestClient, clock: FakeClock, when: datetime) -> None:
    await clock.set(when)
    await client.app[TIMERS].fire_due()


def record(client: TestClient) -> list[BusMessage]:
    seen: list[BusMessage] = []
    client.app[keys.BUS].subscribe(Topic.VISITS, seen.append)
    return seen


async def get(client: TestClient, visit_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/visits/{visit_id}")
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_the_limit_with_warnings_in_order(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(
        demo=True, visit_lead_working_days=0, visit_require_monitor=False, visit_minutes=10
    )
    csrf, visit, _ = await waiting(client, fake_clock)
    seen = record(client)
    live = await post(client, csrf, f"/api/v1/visits/{visit['id']}/admit", {})
    assert live["state"] == "live" and live["live_at"] is not None
    admitted = datetime.fromisoformat(live["live_at"])
    end = admitted + timedelta(minutes=10)
    await tick(client, fake_clock, end - timedelta(minutes=5, seconds=1))
    assert [i["type"] for i in (await get(client, visit["id"]))["items"]] == ["waiting", "admitted"]
    await tick(client, fake_clock, end - timedelta(minutes=5))
    await tick(client, fake_clock, end - timedelta(minutes=1))
    assert (await get(client, visit["id"]))["state"] == "live"
    await tick(client, fake_clock, end)
    done = await get(client, visit["id"])
    assert (done["state"], done["outcome"]) == ("ended", "completed")
    items = done["items"]
    assert [i["type"] for i in items] == ["waiting", "admitted", "warning", "warning", "ended"]
    assert [i["data"].get("minutes_left") for i in items if i["type"] == "warning"] == [5, 1]
    events = [(m.type, m.data.get("minutes_left"), m.data.get("state")) for m in seen]
    warnings = [e for e in events if e[0] == "visit.warning"]
    assert warnings == [("visit.warning", 5, None), ("visit.warning", 1, None)]
    assert events[-1] == ("visit.state", None, "ended")
    assert visit["room_id"] not in client.app[MEDIA].rooms  # the room closed with the visit
    # the timers are spent: nothing fires twice
    await tick(client, fake_clock, end + timedelta(minutes=30))
    assert len((await get(client, visit["id"]))["items"]) == len(items)


async def test_admit_needs_a_monitor_unless_privileged(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0)
    csrf, visit, _ = await waiting(client, fake_clock)
    answer = await post(client, csrf, f"/api/v1/visits/{visit['id']}/admit", {}, 409)
    assert answer["error"]["code"] == "monitor_required"
    room = client.app[MEDIA].rooms[visit["room_id"]]
    async with client.app[keys.SESSIONMAKER]() as session:
        staff_id = await session.scalar(select(User.id).where(User.username == "visit1"))
    assert room.record is True and f"user:{staff_id}" in {m.principal for m in room.monitors}
    assert {p.principal.split(":")[0] for p in room.parties} == {"guest", "device"}
    # a dropped party keeps its place for visit_rejoin_grace_s, not the media default
    assert client.app[MEDIA].manager.room(visit["room_id"]).rejoin_grace_s == 120
    # cancelling the waiting visit closes its room
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/cancel", {"reason": "改期"})
    assert visit["room_id"] not in client.app[MEDIA].rooms
    # a lawyer's visit: its room admits no monitor and records nothing; live without a monitor
    csrf, lawyer, _ = await waiting(client, fake_clock, privileged=True)
    room = client.app[MEDIA].rooms[lawyer["room_id"]]
    assert room.record is False and room.monitors == ()
    live = await post(client, csrf, f"/api/v1/visits/{lawyer['id']}/admit", {})
    assert live["state"] == "live" and live["privileged"] is True


async def test_no_show(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0)
    csrf = await login(client, "visit1")
    visit, codes, start = await approved_visit(client, fake_clock, csrf)
    await tick(client, fake_clock, start + timedelta(minutes=9, seconds=59))
    assert (await get(client, visit["id"]))["state"] == "approved"
    await tick(client, fake_clock, start + timedelta(minutes=10))
    done = await get(client, visit["id"])
    assert (done["state"], done["outcome"]) == ("ended", "no_show")
    assert [i["type"] for i in done["items"]] == ["no_show"]
    assert done["items"][0]["data"] == {"why": "relatives_absent", "relatives_joined": 0}
    late = await post(client, "", "/api/v1/visits/join", {"code": codes[1]["join_code"]}, 403)
    assert late["error"]["code"] == "code_not_valid_now"


async def test_a_family_that_came_but_was_never_admitted_is_not_their_no_show(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0)
    _, visit, start = await waiting(client, fake_clock)
    await tick(client, fake_clock, start + timedelta(minutes=10))
    done = await get(client, visit["id"])
    assert (done["state"], done["outcome"]) == ("ended", "no_show")
    assert done["items"][-1]["type"] == "no_show"
    assert done["items"][-1]["data"] == {"why": "not_admitted", "relatives_joined": 1}
    # the room the relative waited in is closed with the visit
    assert visit["room_id"] not in client.app[MEDIA].rooms


async def test_texts_mute_and_termination_with_a_ban(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0, visit_require_monitor=False)
    csrf, visit, _ = await waiting(client, fake_clock)
    seen = record(client)
    url = f"/api/v1/visits/{visit['id']}"
    await post(client, csrf, f"{url}/warn", {"text": "请使用普通话交谈"})
    await post(client, csrf, f"{url}/admit", {})
    await post(client, csrf, f"{url}/mute", {"side": "relatives"})
    await post(client, csrf, f"{url}/mute", {"side": "nobody"}, 422)
    await post(client, csrf, f"{url}/terminate", {"reason": "bribery"}, 422)
    await post(client, csrf, f"{url}/terminate", {"reason": "coded_speech", "ban_months": 4}, 422)
    done = await post(
        client,
        csrf,
        f"{url}/terminate",
        {"reason": "device_in_view", "note": "画面中出现手机", "ban_months": 2},
    )
    assert (done["state"], done["outcome"], done["reason"]) == (
        "ended",
        "terminated",
        "device_in_view",
    )
    assert [i["type"] for i in done["items"]] == [
        "waiting",
        "text",
        "admitted",
        "mute",
        "terminated",
    ]
    assert done["items"][-1]["data"]["banned_until"].startswith("2027-01-25")
    texts = [m.data for m in seen if m.type == "visit.text"]
    assert texts == [{"visit_id": visit["id"], "prison_id": PRISON_A, "text": "请使用普通话交谈"}]
    assert [m.data["side"] for m in seen if m.type == "visit.mute"] == ["relatives"]
    await post(client, csrf, f"{url}/warn", {"text": "again"}, 409)
    # the relatives are banned until then: a booking in January is refused, in February not
    error = refused(
        await book(client, csrf, "inmate-1001", ["王秀英"], "2027-01-20T10:00:00+08:00", 409),
        "banned",
    )
    assert error["details"]["banned_until"].startswith("2027-01-25")
    await book(client, csrf, "inmate-1001", ["王秀英"], "2027-02-03T10:00:00+08:00")
    async with client.app[keys.SESSIONMAKER]() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target_type == "visit", AuditEntry.target_id == str(visit["id"]))
                .order_by(AuditEntry.id)
            )
        )
    assert actions == [
        "visit.book",
        "visit.approve",
        "visit.join",
        "visit.warn",
        "visit.admit",
        "visit.mute",
        "visit.terminate",
    ]


async def test_the_guest_session_reaches_its_own_visit_only(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, visit_lead_working_days=0, visit_require_monitor=False)
    csrf = await login(client, "visit1")
    visit, codes, start = await approved_visit(client, fake_clock, csrf)
    other = await book(
        client, csrf, "inmate-1002", ["李强"], (start + timedelta(hours=1)).isoformat()
    )
    await fake_clock.set(start)
    joined = await post(client, "", "/api/v1/visits/join", {"code": codes[0]["join_code"]})
    client.session.cookie_jar.clear()  # the relative's phone: no staff login
    guest = {"Authorization": f"Bearer {joined['guest_token']}"}
    me = await (await client.get("/api/v1/me", headers=guest)).json()
    assert me["role"] == "family"
    mine = await client.get(f"/api/v1/visits/{visit['id']}", headers=guest)
    assert mine.status == 200 and (await mine.json())["room_id"] == joined["room_id"]
    assert (await client.get(f"/api/v1/visits/{other['id']}", headers=guest)).status == 404
    assert (await client.get("/api/v1/visits", headers=guest)).status == 403
    resp = await client.post(f"/api/v1/visits/{visit['id']}/admit", json={}, headers=guest)
    assert resp.status == 403
    # once the visit is over the session is worth nothing
    csrf = await login(client, "visit1")
    await post(client, csrf, f"/api/v1/visits/{visit['id']}/terminate", {"reason": "other"})
    client.session.cookie_jar.clear()
    await fake_clock.advance(11)  # past the credential cache
    assert (await client.get("/api/v1/me", headers=guest)).status == 401


async def test_the_demo_visit_can_be_joined_right_after_start(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    creds = client.app[keys.DEMO]
    assert creds["terminal_token"].startswith("dt_")
    demo = creds["visit"]
    assert isinstance(demo["id"], int) and demo["join_codes"]
    joined = await post(client, "", "/api/v1/visits/join", {"code": demo["join_codes"][0]})
    assert joined["visit_id"] == demo["id"] and joined["state"] == "waiting"
    # the terminal's device token is the prison's: it reads that prison's visits
    terminal = {"Authorization": f"Bearer {creds['terminal_token']}"}
    me = await (await client.get("/api/v1/me", headers=terminal)).json()
    assert me["role"] == "visit_staff"


async def test_side_quality_is_each_sides_median_grade(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """Each side's grades (the relatives' participants, the prison terminal's) become one
    median on the record and in the month's figures; the monitor's and the pages' own
    samples do not count; while live, the grid reads each side's latest uplink grade."""
    client = await make_client(
        demo=True, visit_lead_working_days=0, visit_require_monitor=False, visit_minutes=10
    )
    manager = client.app[MEDIA].manager
    # no background sampling: the timeline holds exactly the grades this test puts in
    manager.settings = replace(manager.settings, quality_sample_s=3600.0)
    csrf, visit, _ = await waiting(client, fake_clock)
    room = manager.room(visit["room_id"])
    async with client.app[keys.SESSIONMAKER]() as session:
        parties = sorted(
            await session.scalars(select(VisitParty.id).where(VisitParty.visit_id == visit["id"]))
        )
        terminal = await session.get(PrisonTerminal, visit["terminal_id"])
        staff_id = await session.scalar(select(User.id).where(User.username == "visit1"))
    assert terminal is not None and len(parties) == 2

    def quiet(event: Any) -> None:
        pass

    first = await room.join(MediaRole.PARTY, f"guest:party:{parties[0]}", quiet)
    second = await room.join(MediaRole.PARTY, f"guest:party:{parties[1]}", quiet)
    kiosk = await room.join(MediaRole.PARTY, f"device:{terminal.credential_id}", quiet)
    watcher = await room.join(MediaRole.MONITOR, f"user:{staff_id}", quiet)

    def sample(who: Any, direction: str, grade: Grade, source: str = "server") -> None:
        room.quality.append(
            QualitySample(
                at=fake_clock.now(),
                participant_id=who.id,
                role=str(who.role),
                direction=direction,
                state="connected",
                grade=grade,
                loss=None,
                jitter_ms=None,
                rtt_ms=None,
                bitrate_kbps=None,
                fps=None,
                source=source,
            )
        )

    for who, direction, grade in [
        (first, "uplink", Grade.EXCELLENT),
        (first, "uplink", Grade.GOOD),
        (second, "uplink", Grade.POOR),
        (second, "downlink", Grade.POOR),
        (second, "uplink", Grade.GOOD),
        (kiosk, "uplink", Grade.GOOD),
        (kiosk, "uplink", Grade.POOR),
        (kiosk, "downlink", Grade.POOR),
        (kiosk, "uplink", Grade.LOST),
    ]:
        sample(who, direction, grade)
    for _ in range(5):  # neither the monitor's samples nor a page's own count
        sample(watcher, "uplink", Grade.LOST)
        sample(kiosk, "uplink", Grade.EXCELLENT, source="browser")
    url = f"/api/v1/visits/{visit['id']}"
    now = await get(client, visit["id"])
    assert now["quality"] == {"relatives": None, "inmate": None}
    grid = await (await client.get(f"{url}/quality")).json()
    assert (grid["final"], grid["relatives"], grid["inmate"]) == (False, "good", "lost")

    live = await post(client, csrf, f"{url}/admit", {})
    await tick(client, fake_clock, datetime.fromisoformat(live["live_at"]) + timedelta(minutes=10))
    done = await get(client, visit["id"])
    assert done["outcome"] == "completed"
    # relatives [excellent, good, good, poor, poor] → good; inmate [good, poor, poor, lost]
    # → poor (an even count takes the worse middle grade)
    assert done["quality"] == {"relatives": "good", "inmate": "poor"}
    graded = [i["data"] for i in done["items"] if i["type"] == "quality"]
    assert graded == [
        {"relatives": "good", "inmate": "poor", "samples": {"relatives": 5, "inmate": 4}}
    ]
    grid = await (await client.get(f"{url}/quality")).json()
    assert (grid["final"], grid["relatives"], grid["inmate"]) == (True, "good", "poor")

    tz = client.app[keys.VISITS].rules.tz
    month = datetime.fromisoformat(visit["starts_at"]).astimezone(tz).strftime("%Y-%m")
    resp = await client.get(f"/api/v1/visits/figures?month={month}")
    figures = await resp.json()
    prison = next(f for f in figures["by_prison"] if f["id"] == PRISON_A)
    assert (
        prison["median_quality"],
        prison["median_quality_relatives"],
        prison["median_quality_inmate"],
    ) == ("poor", "good", "poor")
