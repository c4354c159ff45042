"""Location, device, leave and suppression rules, over the real ingestion API."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from alerts.models import AlarmEvent, Leave
from center.clock import FakeClock
from center.models import AuditEntry
from tests.alerts.conftest import (
    STRICT_DEADLINE,
    alarms_for,
    engine_of,
    event_id,
    fix,
    key_headers,
    post_checkin,
    record_bus,
    step_to,
    subject_of_level,
)
from tests.conftest import AppFactory, login
from web import keys

INSIDE = (22.541, 114.055)  # 福田
OUTSIDE = (23.129, 113.264)  # 广州
INSIDE_FAR = (22.58, 114.10)  # ~6 km from INSIDE, still in the city


async def post_fixes(client: TestClient, fixes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = await client.post(
        "/api/v1/locations", json={"items": fixes}, headers=key_headers(client)
    )
    assert resp.status == 200, await resp.text()
    results: list[dict[str, Any]] = (await resp.json())["results"]
    assert all(r["status"] == "accepted" for r in results), results
    return results


async def post_event(client: TestClient, subject_id: str, kind: str, at: datetime) -> int:
    resp = await client.post(
        "/api/v1/device-events",
        json={
            "event_id": event_id("dev"),
            "subject_id": subject_id,
            "device_id": "br-1",
            "kind": kind,
            "at": at.isoformat(),
        },
        headers=key_headers(client),
    )
    return resp.status


def kinds(alarms: list[Any]) -> list[str]:
    return [a.kind for a in alarms]


async def test_out_of_bounds_after_n_fixes_not_before(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, oob_consecutive_fixes=3)
    subject = await subject_of_level(client, "normal")
    now = fake_clock.now()
    out = [fix(subject.id, now + timedelta(seconds=i), *OUTSIDE) for i in (0, 1, 3, 4)]
    await post_fixes(client, out[:2])
    assert await alarms_for(client, subject.id) == []
    # an inside fix resets the run: jitter never adds up to an alarm
    await post_fixes(client, [fix(subject.id, now + timedelta(seconds=2), *INSIDE)])
    await post_fixes(client, out[2:4])  # N-1 consecutive fixes outside
    assert await alarms_for(client, subject.id) == []
    await post_fixes(client, [fix(subject.id, now + timedelta(seconds=5), *OUTSIDE)])
    (alarm,) = await alarms_for(client, subject.id)
    assert (alarm.kind, alarm.severity, alarm.count) == ("out_of_bounds", "high", 1)


async def test_flapping_stays_one_alarm(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, oob_consecutive_fixes=1)
    seen = record_bus(client)
    subject = await subject_of_level(client, "normal")
    t = fake_clock.now()
    for i, where in enumerate([OUTSIDE, INSIDE, OUTSIDE, INSIDE, OUTSIDE]):
        await post_fixes(client, [fix(subject.id, t + timedelta(seconds=i), *where)])
    (alarm,) = await alarms_for(client, subject.id)
    assert alarm.kind == "out_of_bounds" and alarm.count == 3
    assert alarm.first_seen == t and alarm.last_seen == t + timedelta(seconds=4)
    mine = [m.type for m in seen if m.data["subject_id"] == subject.id]
    assert mine.count("alarm.raised") == 1 and mine.count("alarm.updated") >= 2
    async with client.app[keys.SESSIONMAKER]() as session:
        types = (
            (
                await session.execute(
                    select(AlarmEvent.type)
                    .where(AlarmEvent.alarm_id == alarm.id)
                    .order_by(AlarmEvent.id)
                )
            )
            .scalars()
            .all()
        )
    assert [x for x in types if x in ("raised", "repeated", "cleared")] == [
        "raised",
        "cleared",
        "repeated",
        "cleared",
        "repeated",
    ]


async def test_separation(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, separation_m=500)
    subject = await subject_of_level(client, "strict")
    t = fake_clock.now()
    await post_fixes(
        client,
        [
            fix(subject.id, t, *INSIDE, device="phone"),
            fix(subject.id, t + timedelta(seconds=10), *INSIDE, device="bracelet"),
        ],
    )
    assert await alarms_for(client, subject.id) == []
    await post_fixes(
        client, [fix(subject.id, t + timedelta(seconds=20), *INSIDE_FAR, device="phone")]
    )
    (alarm,) = await alarms_for(client, subject.id)
    assert alarm.kind == "separation" and alarm.severity == "high"
    # stale fixes (older than separation_fresh_s apart) are not compared
    other = await subject_of_level(client, "strict", 1)
    await post_fixes(
        client,
        [
            fix(other.id, t - timedelta(minutes=30), *INSIDE, device="bracelet"),
            fix(other.id, t, *INSIDE_FAR, device="phone"),
        ],
    )
    assert await alarms_for(client, other.id) == []


async def test_device_events(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "lenient")
    t = fake_clock.now()
    assert await post_event(client, subject.id, "tamper", t) == 201
    assert await post_event(client, subject.id, "tamper", t + timedelta(seconds=5)) == 201
    assert await post_event(client, subject.id, "sos", t) == 201
    assert await post_event(client, subject.id, "low_battery", t) == 201
    alarms = {a.kind: a for a in await alarms_for(client, subject.id)}
    assert alarms["tamper"].severity == "critical" and alarms["tamper"].count == 2
    assert alarms["sos"].severity == "critical"
    assert alarms["low_battery"].severity == "low"


async def test_device_offline_after_silence(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, device_offline_min=30)
    engine = engine_of(client)
    subject = await subject_of_level(client, "normal")
    await post_fixes(client, [fix(subject.id, fake_clock.now(), *INSIDE)])
    await fake_clock.advance(minutes=29)
    await engine.check_silence()
    assert await alarms_for(client, subject.id) == []
    await fake_clock.advance(minutes=2)
    await engine.check_silence()
    (alarm,) = await alarms_for(client, subject.id)
    assert alarm.kind == "device_offline"
    # the device speaking again clears the condition; the alarm stays for an officer
    await post_fixes(client, [fix(subject.id, fake_clock.now(), *INSIDE)])
    assert len(await alarms_for(client, subject.id)) == 1


async def test_a_silence_sweep_returns_after_a_concurrent_sweep_stored_its_alarm(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """The maintenance loop sweeps every minute beside any caller: whichever sweep notices
    a silent device, a sweep that returns has that device's alarm stored (CI once read the
    alarms between the loop's sweep marking the device and storing its alarm)."""
    client = await make_client(demo=True, device_offline_min=30)
    engine = engine_of(client)
    subject = await subject_of_level(client, "normal")
    await post_fixes(client, [fix(subject.id, fake_clock.now(), *INSIDE)])
    await fake_clock.advance(minutes=31)
    first = asyncio.ensure_future(engine.check_silence())
    await asyncio.sleep(0)  # the first sweep has marked the device and is storing its alarm
    await engine.check_silence()
    assert [a.kind for a in await alarms_for(client, subject.id)] == ["device_offline"]
    await first
    assert len(await alarms_for(client, subject.id)) == 1


async def _leave(client: TestClient, subject_id: str, ends_at: datetime) -> dict[str, Any]:
    csrf = await login(client, "duty1")
    resp = await client.post(
        f"/api/v1/subjects/{subject_id}/leaves",
        json={"destination": "广州市", "ends_at": ends_at.isoformat(), "reason": "探亲"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_leave_allows_outside_then_overdue_return(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    # (a long device_offline_min: the bracelet's silence is not what this test is about)
    client = await make_client(demo=True, oob_consecutive_fixes=1, device_offline_min=1000)
    engine = engine_of(client)
    subject = await subject_of_level(client, "normal")
    end = fake_clock.now() + timedelta(hours=1)
    leave = await _leave(client, subject.id, end)
    assert leave["state"] == "active"
    # on leave: outside the city is allowed, check-ins from there count
    await post_fixes(client, [fix(subject.id, fake_clock.now(), *OUTSIDE)])
    status, _ = await post_checkin(
        client, subject.id, fake_clock.now(), lat=OUTSIDE[0], lon=OUTSIDE[1]
    )
    assert status == 201
    assert await alarms_for(client, subject.id) == []
    # the end passes (plus the grace period) without a check-in back in the city
    due = end + timedelta(seconds=engine.plans.cfg.grace_s)
    await fake_clock.set(due + timedelta(seconds=1))
    await asyncio.wait_for(engine.leave_watcher.wait_processed(fake_clock.now()), 60)
    (alarm,) = await alarms_for(client, subject.id)
    assert alarm.kind == "overdue_return" and alarm.dedup_key == f"overdue_return:{leave['id']}"
    # a second pass does not raise it again
    await engine.leave_watcher.check(fake_clock.now())
    assert len(await alarms_for(client, subject.id)) == 1
    # the return check-in closes the leave
    status, _ = await post_checkin(
        client, subject.id, fake_clock.now(), lat=INSIDE[0], lon=INSIDE[1]
    )
    assert status == 201
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Leave, leave["id"])
        audit = (
            (
                await session.execute(
                    select(AuditEntry.action).where(AuditEntry.target_id == subject.id)
                )
            )
            .scalars()
            .all()
        )
    assert row is not None and row.state == "returned" and row.returned_at is not None
    assert "leave.create" in audit
    # back from leave: outside is out of bounds again
    await post_fixes(client, [fix(subject.id, fake_clock.now() + timedelta(seconds=1), *OUTSIDE)])
    assert sorted(kinds(await alarms_for(client, subject.id))) == [
        "out_of_bounds",
        "overdue_return",
    ]


async def test_return_before_end_raises_nothing(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    engine = engine_of(client)
    subject = await subject_of_level(client, "normal")
    end = fake_clock.now() + timedelta(hours=1)
    await _leave(client, subject.id, end)
    await fake_clock.advance(minutes=30)
    status, _ = await post_checkin(client, subject.id, fake_clock.now(), source="terminal")
    assert status == 201
    await fake_clock.set(end + timedelta(hours=1))
    await asyncio.wait_for(engine.leave_watcher.wait_processed(fake_clock.now()), 60)
    assert await alarms_for(client, subject.id) == []


async def test_suppression_records_but_does_not_raise(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "strict")
    csrf = await login(client, "duty1")
    resp = await client.post(
        f"/api/v1/subjects/{subject.id}/suppressions",
        json={"reason": "住院治疗", "until": (fake_clock.now() + timedelta(days=2)).isoformat()},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201, await resp.text()
    bad = await client.post(
        f"/api/v1/subjects/{subject.id}/suppressions",
        json={"until": (fake_clock.now() + timedelta(days=2)).isoformat()},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status == 422  # a reason is required
    listed_s = await (await client.get(f"/api/v1/subjects/{subject.id}/suppressions")).json()
    assert [x["reason"] for x in listed_s["items"]] == ["住院治疗"]
    seen = record_bus(client)
    await step_to(client, fake_clock, STRICT_DEADLINE + timedelta(seconds=1))
    await post_event(client, subject.id, "tamper", fake_clock.now())
    alarms = await alarms_for(client, subject.id)
    assert sorted(kinds(alarms)) == ["no_checkin", "tamper"]
    assert all(a.state == "suppressed" and a.suppressed for a in alarms)
    assert not [m for m in seen if m.data.get("subject_id") == subject.id]
    listed = await (await client.get(f"/api/v1/alarms?subject={subject.id}")).json()
    assert listed["total"] == 0
    listed = await (await client.get(f"/api/v1/alarms?subject={subject.id}&suppressed=true")).json()
    assert listed["total"] == 2
    async with client.app[keys.SESSIONMAKER]() as session:
        audit = (
            (
                await session.execute(
                    select(AuditEntry.action).where(AuditEntry.target_id == subject.id)
                )
            )
            .scalars()
            .all()
        )
    assert "suppression.create" in audit
