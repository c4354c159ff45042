"""Spot-checks on a real server and database (SQLite and PostgreSQL), on the fake clock:
ring timeout → ``unreachable`` with exactly one ``spotcheck_missed`` alarm (also across a
restart and with two instances), the retry ladder, scope, a spot-check launched from an
alarm landing its record on that alarm, and the subject's side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from alerts.models import Alarm, AlarmEvent
from center.clock import FakeClock
from center.models import Subject, User
from tests.alerts.workflow_support import browser, raise_alarm
from tests.conftest import AppFactory, demo_credentials, login
from web import keys


def subject_of(client: TestClient, username: str = "subject1") -> str:
    return str(demo_credentials(client)["users"][username]["subject_id"])


async def start(client: TestClient, csrf: str, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/spotchecks", json=body, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def get(client: TestClient, spotcheck_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/spotchecks/{spotcheck_id}")
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def missed_alarms(client: TestClient, spotcheck_id: int) -> list[Alarm]:
    async with client.app[keys.SESSIONMAKER]() as session:
        return list(
            await session.scalars(
                select(Alarm).where(Alarm.dedup_key == f"spotcheck_missed:{spotcheck_id}")
            )
        )


async def ring_out(client: TestClient, clock: FakeClock, seconds: float = 61) -> None:
    await clock.advance(seconds)
    await client.app[keys.TIMERS].fire_due()


async def test_ring_timeout_is_unreachable_with_one_alarm(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "street1")
    sc = await start(client, csrf, subject_id=subject_of(client))
    assert sc["state"] == "ringing" and sc["alarm_id"] is None and sc["room_id"]
    assert sc["attempt"] == 1
    await ring_out(client, fake_clock, 59)
    assert (await get(client, sc["id"]))["state"] == "ringing"
    await ring_out(client, fake_clock, 2)
    done = await get(client, sc["id"])
    assert done["state"] == "unreachable" and done["result"] == "unreachable"
    alarms = await missed_alarms(client, sc["id"])
    assert [a.kind for a in alarms] == ["spotcheck_missed"]
    assert done["missed_alarm_id"] == alarms[0].id
    assert [i["type"] for i in done["items"]] == ["attempt", "no_answer", "alarm"]
    # the missed alarm is in the normal duty workflow: armed with its SLA deadlines
    await ring_out(client, fake_clock, 3600)
    assert len(await missed_alarms(client, sc["id"])) == 1


async def test_restart_mid_ring_and_two_instances(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    first = await make_client(demo=True, database_url=database_url)
    csrf = await login(first, "street1")
    sc = await start(first, csrf, subject_id=subject_of(first))
    await first.close()  # the instance goes away mid-ring
    a = await make_client(demo=True, database_url=database_url)
    b = await make_client(demo=True, database_url=database_url)
    await fake_clock.advance(120)
    await a.app[keys.TIMERS].fire_due()
    await b.app[keys.TIMERS].fire_due()
    await login(b, "street1")
    assert (await get(b, sc["id"]))["state"] == "unreachable"
    assert len(await missed_alarms(b, sc["id"])) == 1


async def test_retry_ladder_then_decline(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, spotcheck_retry_s="300")
    csrf = await login(client, "street1")
    sc = await start(client, csrf, subject_id=subject_of(client))
    await ring_out(client, fake_clock)
    waiting = await get(client, sc["id"])
    assert waiting["state"] == "waiting" and not await missed_alarms(client, sc["id"])
    await ring_out(client, fake_clock, 299)
    assert (await get(client, sc["id"]))["state"] == "waiting"
    await ring_out(client, fake_clock, 1)
    again = await get(client, sc["id"])
    assert again["state"] == "ringing" and again["attempt"] == 2
    # the subject declines the second ring: that is the end of the ladder
    async with browser(client, "subject1") as (phone, phone_csrf):
        resp = await phone.post(
            f"/api/v1/spotchecks/{sc['id']}/decline", json={}, headers={"X-CSRF-Token": phone_csrf}
        )
        assert resp.status == 200, await resp.text()
    done = await get(client, sc["id"])
    assert done["state"] == "unreachable"
    assert [a["data"]["attempt"] for a in done["attempts"]] == [1, 2]
    assert [i["type"] for i in done["items"]] == [
        "attempt",
        "no_answer",
        "attempt",
        "declined",
        "alarm",
    ]
    assert len(await missed_alarms(client, sc["id"])) == 1
    await ring_out(client, fake_clock, 3600)  # the cancelled ring timer stays silent
    assert len(await missed_alarms(client, sc["id"])) == 1


async def test_scope_and_refusals(demo_client: TestClient) -> None:
    client = demo_client
    other = subject_of(client, "subject3")  # street2's office
    csrf = await login(client, "street1")
    resp = await client.post(
        "/api/v1/spotchecks", json={"subject_id": other}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post(
        "/api/v1/spotchecks", json={"subject_id": "nobody"}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 404
    sc = await start(client, csrf, subject_id=subject_of(client))
    resp = await client.post(
        "/api/v1/spotchecks",
        json={"subject_id": subject_of(client)},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 409  # one open spot-check per subject
    # not live yet: no challenge, no result
    for action, body in (("challenge", {}), ("result", {"result": "passed"})):
        resp = await client.post(
            f"/api/v1/spotchecks/{sc['id']}/{action}", json=body, headers={"X-CSRF-Token": csrf}
        )
        assert resp.status == 409, action
    csrf2 = await login(client, "street2")
    assert (await client.get(f"/api/v1/spotchecks/{sc['id']}")).status == 404
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/cancel", json={}, headers={"X-CSRF-Token": csrf2}
    )
    assert resp.status == 404
    listed = await (await client.get("/api/v1/spotchecks")).json()
    assert listed["total"] == 0
    # the subject's own login sees its own call, never another's, and cannot start one
    async with browser(client, "subject3") as (phone, phone_csrf):
        resp = await phone.get(f"/api/v1/spotchecks/{sc['id']}")
        assert resp.status == 404
        resp = await phone.post(
            "/api/v1/spotchecks", json={"subject_id": other}, headers={"X-CSRF-Token": phone_csrf}
        )
        assert resp.status == 403
    async with browser(client, "subject1") as (phone, _):
        mine = await (await phone.get("/api/v1/spotchecks?state=ringing")).json()
        assert [s["id"] for s in mine["items"]] == [sc["id"]]
        assert mine["items"][0]["officer"] == "福田司法所一"
        assert mine["items"][0]["home"] is None  # not sent to the phone


async def test_from_an_alarm_with_answer_challenge_and_result(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    alarm = await raise_alarm(client, kind="sos")
    csrf = await login(client, "street1")
    subject_id = subject_of(client)
    assert alarm["subject_id"] == subject_id
    resp = await client.post(
        "/api/v1/spotchecks",
        json={"subject_id": subject_of(client, "subject2"), "alarm_id": alarm["id"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 422  # the alarm is about someone else
    sc = await start(client, csrf, subject_id=subject_id, alarm_id=alarm["id"])
    assert sc["alarm_id"] == alarm["id"]
    async with browser(client, "subject1") as (phone, phone_csrf):
        resp = await phone.post(
            f"/api/v1/spotchecks/{sc['id']}/answer",
            json={"lat": 22.55, "lon": 114.06, "accuracy_m": 12.5},
            headers={"X-CSRF-Token": phone_csrf},
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["state"] == "live"
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/challenge",
        json={"kind": "digits"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200, await resp.text()
    live = await resp.json()
    digits = live["challenges"][0]["data"]["digits"]
    assert len(digits) == 4 and digits.isdigit()
    assert live["challenge"]["digits"] == digits
    assert live["answer_location"]["lat"] == 22.55
    assert live["distance_m"] is not None and live["home"] is not None
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/result",
        json={"result": "failed"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 422  # a failure needs a reason
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/result",
        json={
            "result": "failed",
            "reason": "face_mismatch",
            "note": "不是本人",
            "alarm_kind": "face_mismatch",
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["state"] == "failed" and done["reason"] == "face_mismatch"
    raised = done["raised_alarm_id"]
    async with client.app[keys.SESSIONMAKER]() as session:
        kind = await session.scalar(select(Alarm.kind).where(Alarm.id == raised))
        assert kind == "face_mismatch"  # pending an officer: it is in the queue, state new
        types = list(
            await session.scalars(
                select(AlarmEvent.type)
                .where(AlarmEvent.alarm_id == alarm["id"])
                .order_by(AlarmEvent.id)
            )
        )
        count = await session.scalar(
            select(func.count()).select_from(Alarm).where(Alarm.kind == "face_mismatch")
        )
    assert count == 1
    for expected in (
        "spotcheck_started",
        "spotcheck_ringing",
        "spotcheck_answered",
        "spotcheck_location",
        "spotcheck_challenge",
        "spotcheck_result",
    ):
        assert expected in types, (expected, types)
    resp = await client.get(f"/api/v1/alarms/{alarm['id']}/workflow")
    timeline = (await resp.json())["timeline"]
    assert any(e["type"] == "spotcheck_challenge" for e in timeline)


async def test_pages_and_demo_logins(demo_client: TestClient) -> None:
    client = demo_client
    users = demo_credentials(client)["users"]
    subjects = {n: u for n, u in users.items() if u["role"] == "subject"}
    assert len(subjects) == 3 and all(u["subject_id"] for u in subjects.values())
    await login(client, "subject1")
    me = await (await client.get("/api/v1/me")).json()
    assert me["home"] == "/s"
    resp = await client.get("/s")
    assert resp.status == 200 and "subject.js" in await resp.text()
    assert (await client.get("/spotcheck")).status == 403  # not for subjects
    await login(client, "street1")
    resp = await client.get("/spotcheck?subject=x")
    assert resp.status == 200 and "spotcheck.js" in await resp.text()
    assert "spotcheck-launch.js" in await (await client.get("/console")).text()


async def test_daily_report_counts_spot_checks(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "street1")
    missed = await start(client, csrf, subject_id=subject_of(client, "subject2"))
    sc = await start(client, csrf, subject_id=subject_of(client))
    await fake_clock.advance(20)
    async with browser(client, "subject1") as (phone, phone_csrf):
        resp = await phone.post(
            f"/api/v1/spotchecks/{sc['id']}/answer", json={}, headers={"X-CSRF-Token": phone_csrf}
        )
        assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/result",
        json={"result": "passed"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 200
    await ring_out(client, fake_clock, 60)
    assert (await get(client, missed["id"]))["state"] == "unreachable"
    report = await (await client.get("/api/v1/reports/daily?date=2026-11-25")).json()
    assert report["spotchecks"] == {
        "started": 2,
        "done": 2,
        "passed": 1,
        "failed": 0,
        "unreachable": 1,
        "cancelled": 0,
        "answer_median_s": 20.0,
    }


async def test_cli_creates_a_subject_login(make_client: AppFactory, tmp_path: Path) -> None:
    from tests.center.test_database import _cli

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    client = await make_client(demo=True, database_url=url)
    async with client.app[keys.SESSIONMAKER]() as session:
        taken = set(
            await session.scalars(select(User.subject_id).where(User.subject_id.is_not(None)))
        )
        free = await session.scalar(
            select(Subject.id).where(Subject.id.not_in(taken)).order_by(Subject.id).limit(1)
        )
    await client.close()
    args = ("create-user", "--username", "phone1", "--role", "subject", "--subject-id")
    r = _cli(url, tmp_path, *args, str(free))
    assert r.returncode == 0, r.stderr
    r = _cli(url, tmp_path, *args[:-1])
    assert r.returncode == 2 and "--subject-id" in r.stderr
    r = _cli(
        url,
        tmp_path,
        "create-user",
        "--username",
        "phone2",
        "--role",
        "subject",
        "--subject-id",
        str(free),
    )
    assert r.returncode == 2 and "already has a login" in r.stderr
    again = await make_client(demo=True, database_url=url)
    async with again.app[keys.SESSIONMAKER]() as session:
        user = await session.scalar(select(User).where(User.username == "phone1"))
        subject = await session.get(Subject, free)
    assert user is not None and subject is not None
    assert user.subject_id == free and user.jurisdiction_id == subject.street_id


async def test_two_officers_at_once_get_one_spot_check(
    make_client: AppFactory, database_url: str
) -> None:
    import asyncio

    client = await make_client(demo=True, database_url=database_url)
    subject_id = subject_of(client)
    async with browser(client, "street1") as (a, csrf_a), browser(client, "duty1") as (b, csrf_b):
        responses = await asyncio.gather(
            a.post(
                "/api/v1/spotchecks",
                json={"subject_id": subject_id},
                headers={"X-CSRF-Token": csrf_a},
            ),
            b.post(
                "/api/v1/spotchecks",
                json={"subject_id": subject_id},
                headers={"X-CSRF-Token": csrf_b},
            ),
        )
        assert sorted(r.status for r in responses) == [201, 409]
    rooms = client.app[keys.MEDIA].manager.rooms()
    assert len(rooms) == 1  # the loser's call room was closed again


async def test_wall_counters_survive_a_dashboard_rebuild(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    dashboard = client.app[keys.DASHBOARD]

    def counts() -> tuple[int, int]:
        book = dashboard.state.spotchecks
        return book.live.total(), book.today.total()

    csrf = await login(client, "street1")
    await start(client, csrf, subject_id=subject_of(client))
    assert counts() == (1, 1)
    await dashboard.rebuild()
    assert counts() == (1, 1)
    await ring_out(client, fake_clock)
    assert counts() == (0, 1)
    await dashboard.rebuild()
    assert counts() == (0, 1)


async def test_track_with_fixes_and_answer_locations(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    subject_id = subject_of(client)
    key = demo_credentials(client)["integration_key"]
    now = fake_clock.now()
    for i, lat in enumerate((22.540, 22.541, 22.542)):
        resp = await client.post(
            "/api/v1/locations",
            json={
                "event_id": f"track-{i}",
                "subject_id": subject_id,
                "device": "phone",
                "at": now.isoformat(),
                "lat": lat,
                "lon": 114.05,
                "accuracy_m": 20,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert resp.status in (200, 201), await resp.text()
    csrf = await login(client, "street1")
    sc = await start(client, csrf, subject_id=subject_id)
    async with browser(client, "subject1") as (phone, phone_csrf):
        resp = await phone.post(
            f"/api/v1/spotchecks/{sc['id']}/answer",
            json={"lat": 22.543, "lon": 114.051},
            headers={"X-CSRF-Token": phone_csrf},
        )
        assert resp.status == 200
    track = await (await client.get(f"/api/v1/subjects/{subject_id}/track?hours=24")).json()
    assert [f["lat"] for f in track["fixes"]] == [22.540, 22.541, 22.542]
    assert [(m["kind"], m["lat"], m["ref"]) for m in track["marks"]] == [
        ("spotcheck", 22.543, f"{sc['id']}:live")
    ]
    await login(client, "street2")
    assert (await client.get(f"/api/v1/subjects/{subject_id}/track")).status == 404
