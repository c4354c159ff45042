"""The dashboard topic: live counts from bus events, coalescing under a storm, SLA breaches on
the fake clock, staffing, check-ins, resume, scoping, masking, and rebuilds from the database."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.conftest import AppFactory, login
from tests.web.ws.conftest import WsClient, alarm, authed, bus_of, street_of, wall_token
from web import keys
from web.ws.hub import hub_of


async def dashboard(ws: WsClient, **fields: Any) -> tuple[int, dict[str, Any]]:
    sub = await ws.send("subscribe", topic="dashboard", **fields)
    res = await ws.result(sub)
    assert res["success"], res
    return sub, res["result"]


def latest(ws: WsClient, sub: int, section: str, snapshot: dict[str, Any]) -> Any:
    """The newest value of a section: the last delta that carried it, else the snapshot."""
    for event in reversed(ws.events(sub)):
        if section in event["data"]:
            return event["data"][section]
    return snapshot[section]


async def wait_section(
    ws: WsClient, sub: int, section: str, snapshot: dict[str, Any], predicate: Any
) -> Any:
    await ws.wait_for(lambda _: predicate(latest(ws, sub, section, snapshot)))
    return latest(ws, sub, section, snapshot)


async def test_counts_follow_alarm_events(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub, res = await dashboard(ws)
    snap = res["snapshot"]
    assert snap["alarms"]["open"] == 0 and snap["meta"]["scope"]["id"] == "4403"
    assert {d["id"] for d in snap["meta"]["districts"]} >= {"440311", "440399", "440304"}
    futian = street_of(demo_client, "street1")
    bus = bus_of(demo_client)
    await bus.publish("alarms", "alarm.raised", alarm(futian, alarm_id="D1"))
    await bus.publish("alarms", "alarm.raised", alarm(futian, alarm_id="D2", severity="low"))
    await bus.publish("alarms", "alarm.raised", alarm("440311001", alarm_id="D3", kind="sos"))
    alarms = await wait_section(ws, sub, "alarms", snap, lambda a: a["open"] == 3)
    assert alarms["by_district"] == {"440304": 2, "440311": 1}
    assert alarms["by_severity"] == {"high": 2, "low": 1}
    assert alarms["by_kind"] == {"no_checkin": 2, "sos": 1}
    closed = alarm(futian, alarm_id="D1", state="closed", version=2)
    await bus.publish("alarms", "alarm.updated", closed)
    # a stale version of a closed alarm does not bring it back
    await bus.publish("alarms", "alarm.updated", alarm(futian, alarm_id="D2", version=2))
    await bus.publish("alarms", "alarm.updated", alarm(futian, alarm_id="D2", version=1))
    loop = await wait_section(ws, sub, "closed_loop", snap, lambda c: c["closed_today"] == 1)
    assert loop == {"raised_today": 3, "closed_today": 1, "rate": 0.3333}
    alarms = latest(ws, sub, "alarms", snap)
    assert alarms["open"] == 2 and alarms["by_severity"] == {"high": 2}
    checkins = latest(ws, sub, "checkins", snap)
    assert checkins["total"]["missed"] == 2  # the two no_checkin alarms raised today
    trend = latest(ws, sub, "trend", snap)
    assert sum(trend["counts"]) == 3 and len(trend["counts"]) == 24
    await ws.close()


async def test_ticker_masked_for_walls_full_for_officers(demo_client: TestClient) -> None:
    wall = await authed(demo_client, wall_token(demo_client))
    wsub, wres = await dashboard(wall)
    await login(demo_client, "duty1")
    duty = await authed(demo_client)
    dsub, dres = await dashboard(duty)
    street = street_of(demo_client, "street1")
    await bus_of(demo_client).publish("alarms", "alarm.raised", alarm(street, name="欧阳娜娜"))
    wt = await wait_section(wall, wsub, "ticker", wres["snapshot"], bool)
    dt = await wait_section(duty, dsub, "ticker", dres["snapshot"], bool)
    assert wt[0]["subject_name"] == "欧**娜" and dt[0]["subject_name"] == "欧阳娜娜"
    assert wt[0]["street_name"] and wt[0]["district_name"] == "福田区"
    for item in (wt[0], dt[0]):
        assert "id_number" not in item and "phone" not in item
    assert "欧阳娜娜" not in str(wall.messages)
    await wall.close()
    await duty.close()


async def test_storm_is_coalesced_with_exact_counts(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub, res = await dashboard(ws)
    bus = bus_of(demo_client)
    streets = [street_of(demo_client, "street1"), street_of(demo_client, "street2"), "440311001"]
    started = time.monotonic()
    for batch in range(60):  # 6,000 alarms over about a second
        for i in range(100):
            n = batch * 100 + i
            await bus.publish("alarms", "alarm.raised", alarm(streets[n % 3], alarm_id=f"S{n}"))
        await asyncio.sleep(1 / 60)
    alarms = await wait_section(ws, sub, "alarms", res["snapshot"], lambda a: a["open"] == 6000)
    elapsed = time.monotonic() - started
    deltas = ws.events(sub)
    # at most dashboard_updates_per_s (2) a second, plus the one that may be due at the start
    assert len(deltas) <= 2 * elapsed + 2, (len(deltas), elapsed)
    assert alarms["by_district"] == {"440304": 4000, "440311": 2000}
    assert sum(alarms["by_kind"].values()) == 6000
    assert latest(ws, sub, "closed_loop", res["snapshot"])["raised_today"] == 6000
    assert len(latest(ws, sub, "ticker", res["snapshot"])) == 20
    assert hub_of(demo_client.app).projection.state.alarms.open_by_node.total() == 6000
    await ws.close()


async def test_sla_breach_on_the_fake_clock(demo_client: TestClient, fake_clock: FakeClock) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub, res = await dashboard(ws)
    due = (fake_clock.now() + timedelta(minutes=5)).isoformat()
    street = street_of(demo_client, "street1")
    bus = bus_of(demo_client)
    await bus.publish("alarms", "alarm.raised", alarm(street, alarm_id="L1", ack_due_at=due))
    await wait_section(ws, sub, "alarms", res["snapshot"], lambda a: a["open"] == 1)
    assert latest(ws, sub, "alarms", res["snapshot"])["overdue"] == 0
    await fake_clock.advance(minutes=6)
    alarms = await wait_section(ws, sub, "alarms", res["snapshot"], lambda a: a["overdue"] == 1)
    assert alarms["overdue_by_district"] == {"440304": 1}
    ticker = latest(ws, sub, "ticker", res["snapshot"])
    assert ticker[0]["overdue"] is True
    acked = alarm(street, alarm_id="L1", version=2, state="acknowledged", ack_due_at=due)
    await bus.publish("alarms", "alarm.updated", acked)
    await wait_section(ws, sub, "alarms", res["snapshot"], lambda a: a["overdue"] == 0)
    await ws.close()


async def test_staffing_checkins_and_media(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub, res = await dashboard(ws)
    snap = res["snapshot"]
    assert set(snap["staffing"]) == {"on_duty", "minimum", "warning", "roster"}
    bus = bus_of(demo_client)
    await bus.publish(
        "duty",
        "duty.staffing",
        {
            "jurisdiction_id": "4403",
            "on_duty": 1,
            "minimum": 2,
            "warning": True,
            "officers": ["duty1"],
        },
    )
    staffing = await wait_section(ws, sub, "staffing", snap, lambda s: s["on_duty"] == 1)
    assert staffing == {"on_duty": 1, "minimum": 2, "warning": True, "roster": True}
    street = street_of(demo_client, "street1")
    window = "2026-11-25T00:00:00+00:00"
    for event_id, subject, late, win in (
        ("e1", "S1", False, window),
        ("e2", "S1", False, "2026-11-25T08:00:00+08:00"),  # same window, other offset
        ("e3", "S2", False, window),
        ("e4", "S3", True, window),  # late: its window is counted as missed, not done
    ):
        data = {
            "event_id": event_id,
            "subject_id": subject,
            "street_id": street,
            "district_id": street[:6],
            "at": window,
            "source": "app",
            "late": late,
            "window_start": win,
        }
        await bus.publish("checkins", "checkin.recorded", data)
    checkins = await wait_section(ws, sub, "checkins", snap, lambda c: c["total"]["done"] == 2)
    assert checkins["by_district"]["440304"]["done"] == 2
    await bus.publish("visits", "visit.state", {"id": 7, "state": "live", "district_id": "440304"})
    await bus.publish("spotchecks", "spotcheck.state", {"id": 9, "state": "connected"})
    media = await wait_section(ws, sub, "media", snap, lambda m: m["visits"]["live"] == 1)
    await wait_section(ws, sub, "media", snap, lambda m: m["spotchecks"]["live"] == 1)
    ended = {"id": 7, "state": "ended", "outcome": "terminated", "district_id": "440304"}
    await bus.publish("visits", "visit.state", ended)
    await bus.publish("visits", "visit.state", ended)  # replayed: counted once
    media = await wait_section(ws, sub, "media", snap, lambda m: m["visits"]["live"] == 0)
    assert media["visits"] == {"live": 0, "today": 1, "terminated": 1}
    await ws.close()


async def test_resume_in_the_same_epoch_sends_only_what_changed(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub, res = await dashboard(ws)
    bus = bus_of(demo_client)
    await bus.publish("alarms", "alarm.raised", alarm(street_of(demo_client, "street1")))
    await wait_section(ws, sub, "alarms", res["snapshot"], lambda a: a["open"] == 1)
    seq = ws.events(sub)[-1]["seq"]
    await ws.close()
    await bus.publish("duty", "duty.staffing", {"jurisdiction_id": "4403", "on_duty": 3})
    emitted = asyncio.Event()
    remove = hub_of(demo_client.app).projection.add_listener(lambda *_: emitted.set())
    await asyncio.wait_for(emitted.wait(), 10)
    remove()
    ws = await authed(demo_client, wall_token(demo_client))
    # one subscription at a time: a socket may not hold the same topic twice
    sub2, again = await dashboard(ws, since={"epoch": res["epoch"], "seq": seq})
    assert again["recovered"] is True
    (delta,) = again["events"]
    assert set(delta["data"]) == {"staffing"} and delta["data"]["staffing"]["on_duty"] == 3
    assert (await ws.call("unsubscribe", subscription=sub2))["success"]
    sub3, same = await dashboard(ws, since={"epoch": again["epoch"], "seq": again["seq"]})
    assert same["recovered"] is True and same["events"] == []
    assert (await ws.call("unsubscribe", subscription=sub3))["success"]
    _, other = await dashboard(ws, since={"epoch": "another-instance", "seq": seq})
    assert other["recovered"] is False and other["snapshot"]["alarms"]["open"] == 1
    await ws.close()


async def test_district_officer_sees_only_the_district(demo_client: TestClient) -> None:
    await login(demo_client, "futian")
    ws = await authed(demo_client)
    sub, res = await dashboard(ws)
    snap = res["snapshot"]
    assert snap["meta"]["scope"]["id"] == "440304"
    assert [d["id"] for d in snap["meta"]["districts"]] == ["440304"]
    assert set(snap["subjects"]["by_district"]) == {"440304"}
    assert 0 < snap["subjects"]["total"] < 2000
    bus = bus_of(demo_client)
    await bus.publish("alarms", "alarm.raised", alarm("440311001", alarm_id="O1"))
    await bus.publish("alarms", "alarm.raised", alarm(street_of(demo_client, "street1")))
    alarms = await wait_section(ws, sub, "alarms", snap, lambda a: a["open"] >= 1)
    assert alarms["by_district"] == {"440304": 1}
    assert all(t["district_id"] == "440304" for t in latest(ws, sub, "ticker", snap))
    await ws.close()


async def test_rebuild_from_the_database(make_client: AppFactory, database_url: str) -> None:
    """Alarms in the tables (and none on the bus) appear after a rebuild, and a live event for
    an alarm the rebuild already loaded does not count twice (SQLite and PostgreSQL)."""
    from sqlalchemy import select

    from alerts.models import Alarm
    from center.models import Subject
    from config.privacy import mask_name

    client = await make_client(demo=True, database_url=database_url)
    now = client.app[keys.CLOCK].now()
    street = street_of(client, "street1")
    async with client.app[keys.SESSIONMAKER]() as session:
        subject = await session.scalar(select(Subject).where(Subject.street_id == street))
        assert subject is not None
        for i, state in enumerate(("new", "new", "closed", "suppressed")):
            session.add(
                Alarm(
                    kind="no_checkin",
                    severity="high",
                    state=state,
                    suppressed=state == "suppressed",
                    subject_id=subject.id,
                    level="strict",
                    street_id=street,
                    district_id=street[:6],
                    version=1,
                    count=1,
                    first_seen=now,
                    last_seen=now,
                    dedup_key=f"test:{i}",
                    details="{}",
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()
        ids = [a.id for a in (await session.execute(Alarm.__table__.select())).all()]
    projection = hub_of(client.app).projection
    await projection.rebuild()
    ws = await authed(client, wall_token(client))
    sub, res = await dashboard(ws)
    snap = res["snapshot"]
    assert snap["alarms"]["open"] == 2 and snap["meta"]["alarms_source"] is True
    assert snap["closed_loop"]["raised_today"] == 4 and snap["closed_loop"]["closed_today"] == 2
    assert {t["subject_name"] for t in snap["ticker"]} == {mask_name(subject.name)}
    assert subject.name not in str(ws.messages)
    data = alarm(street, alarm_id=ids[0], version=1)
    data["id"] = ids[0]
    await bus_of(client).publish("alarms", "alarm.updated", data)
    await bus_of(client).publish("alarms", "alarm.raised", alarm(street, alarm_id="fresh"))
    alarms = await wait_section(ws, sub, "alarms", snap, lambda a: a["open"] == 3)
    assert alarms["open"] == 3
    await ws.close()
