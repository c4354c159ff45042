"""The deadline watcher with the fake clock: missed, kept, late, restarts, two instances."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from alerts.models import Alarm, AlarmEvent
from center.clock import FakeClock
from tests.alerts.conftest import (
    STRICT_DEADLINE,
    STRICT_WINDOW_START,
    alarms_for,
    engine_of,
    post_checkin,
    record_bus,
    step_to,
    subject_of_level,
)
from tests.conftest import AppFactory
from web import keys


async def test_missed_window_raises_exactly_one_alarm(
    database_url: str, make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    raised = record_bus(client)
    subject = await subject_of_level(client, "strict")
    kept = await subject_of_level(client, "strict", 1)
    status, _ = await post_checkin(client, kept.id, fake_clock.now() - timedelta(minutes=5))
    assert status == 201
    await step_to(client, fake_clock, STRICT_DEADLINE - timedelta(seconds=1))
    assert await alarms_for(client, subject.id) == []
    await step_to(client, fake_clock, STRICT_DEADLINE + timedelta(seconds=1))
    alarms = await alarms_for(client, subject.id)
    assert len(alarms) == 1
    a = alarms[0]
    assert (a.kind, a.state, a.severity, a.count) == ("no_checkin", "new", "high", 1)
    assert a.window_start == STRICT_WINDOW_START
    assert a.dedup_key == f"no_checkin:{subject.id}:{STRICT_WINDOW_START.isoformat()}"
    # a check-in inside the window raises nothing
    assert await alarms_for(client, kept.id) == []
    # (the duty workflow may follow up with alarm.updated once it arms its timers)
    mine = [m for m in raised if m.data["subject_id"] == subject.id and m.type == "alarm.raised"]
    assert len(mine) == 1
    data = mine[0].data
    for field in (
        "id",
        "kind",
        "severity",
        "state",
        "subject_id",
        "subject_name",
        "level",
        "street_id",
        "district_id",
        "version",
        "count",
        "first_seen",
        "last_seen",
        "suppressed",
    ):
        assert field in data
    assert data["subject_name"] == subject.name and data["suppressed"] is False
    assert data["version"] == 1  # (the duty workflow may bump it later when it arms timers)
    # one alarm per strict subject without a check-in, nothing for the others
    async with client.app[keys.SESSIONMAKER]() as session:
        n = await session.scalar(select(func.count()).select_from(Alarm))
        n_events = await session.scalar(select(func.count()).select_from(AlarmEvent))
    strict = sum(1 for lv in engine_of(client).directory.levels if lv == "strict")
    assert n == strict - 1 and n_events == n
    assert len([m for m in raised if m.type == "alarm.raised"]) == n


async def test_late_checkin_marks_the_alarm(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "strict")
    await step_to(client, fake_clock, STRICT_DEADLINE + timedelta(minutes=5))
    (before,) = await alarms_for(client, subject.id)
    seen = record_bus(client)
    status, body = await post_checkin(client, subject.id, fake_clock.now(), event_id="late-1")
    assert status == 201 and body["late"] is True
    assert body["window_start"] == STRICT_WINDOW_START.isoformat()
    (alarm,) = await alarms_for(client, subject.id)
    assert alarm.kind == "late_checkin" and alarm.checkin_event_id == "late-1"
    # (the duty workflow may also bump the version when it arms its timers)
    assert alarm.state == "new" and alarm.version > before.version
    updates = [m for m in seen if m.data["subject_id"] == subject.id]
    assert updates and all(m.type == "alarm.updated" for m in updates)
    assert any(m.data["kind"] == "late_checkin" for m in updates)
    # past the lateness limit a check-in no longer touches the alarm
    other = await subject_of_level(client, "strict", 1)
    await fake_clock.advance(hours=3)
    status, body = await post_checkin(client, other.id, fake_clock.now())
    assert status == 201 and body["late"] is False and body["window_start"] is None
    (alarm,) = await alarms_for(client, other.id)
    assert alarm.kind == "no_checkin"


async def test_restart_after_missed_deadline_raises_once(
    database_url: str, make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    subject = await subject_of_level(client, "strict")
    await step_to(client, fake_clock, fake_clock.now())
    await client.close()
    # the deadline passes while the server is down
    await fake_clock.set(STRICT_DEADLINE + timedelta(minutes=30))
    second = await make_client(demo=True, database_url=database_url)
    raised = record_bus(second)
    await step_to(second, fake_clock, fake_clock.now())
    alarms = await alarms_for(second, subject.id)
    assert [a.kind for a in alarms] == ["no_checkin"]
    await second.close()
    third = await make_client(demo=True, database_url=database_url)
    again = record_bus(third)
    await step_to(third, fake_clock, fake_clock.now() + timedelta(seconds=1))
    assert len(await alarms_for(third, subject.id)) == 1
    assert [m for m in again if m.type == "alarm.raised"] == []
    _ = raised


async def test_checkin_on_other_instance_satisfies_window(
    database_url: str, make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """Two watchers on one database: each alarm once; a check-in on A counts on B."""
    a = await make_client(demo=True, database_url=database_url)
    b = await make_client(demo=True, database_url=database_url)
    seen_a, seen_b = record_bus(a), record_bus(b)
    subject = await subject_of_level(a, "strict")
    kept = await subject_of_level(a, "strict", 1)
    status, _ = await post_checkin(a, kept.id, fake_clock.now())
    assert status == 201
    await fake_clock.set(STRICT_DEADLINE + timedelta(seconds=1))
    for c in (a, b):
        await step_to(c, fake_clock, fake_clock.now())
    assert len(await alarms_for(a, subject.id)) == 1
    assert await alarms_for(a, kept.id) == []
    async with a.app[keys.SESSIONMAKER]() as session:
        n = await session.scalar(select(func.count()).select_from(Alarm))
    ids: list[Any] = [m.data["id"] for m in seen_a + seen_b if m.type == "alarm.raised"]
    assert len(ids) == n == len(set(ids))
