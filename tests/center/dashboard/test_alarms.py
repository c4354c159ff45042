"""The alarm book behind the dashboard, without a network: keyed counts, versions, states,
SLA deadlines and the trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from center.dashboard.alarms import AlarmBook
from center.dashboard.books import CheckinBook, Staffing

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def alarm(
    alarm_id: int, version: int = 1, state: str = "new", **extra: object
) -> dict[str, object]:
    return {
        "id": alarm_id,
        "kind": "no_checkin",
        "severity": "high",
        "state": state,
        "street_id": "440304001",
        "district_id": "440304",
        "version": version,
        "first_seen": NOW.isoformat(),
        **extra,
    }


def book() -> AlarmBook:
    b = AlarmBook(ZoneInfo("Asia/Shanghai"), "4403")
    b.start_day(NOW)
    return b


def test_repeats_and_stale_versions_do_not_double_count() -> None:
    b = book()
    for _ in range(3):
        b.apply(alarm(1), NOW)
    assert b.open_by_node == {"440304001": 1} and b.raised_today.total() == 1
    assert b.apply(alarm(1, version=2, state="closed"), NOW)
    assert b.open == {} and b.closed_today.total() == 1
    b.apply(alarm(1, version=3, state="reopened"), NOW)
    assert len(b.open) == 1 and b.closed_today.total() == 0
    assert not b.apply(alarm(1, version=2, state="closed"), NOW)  # stale
    assert len(b.open) == 1
    assert b.missed_today.total() == 1 and sum(b.trend.values()) == 1


def test_suppressed_and_resolved_are_not_open() -> None:
    b = book()
    b.apply(alarm(1, state="suppressed", suppressed=True), NOW)
    b.apply(alarm(2, state="resolved"), NOW)
    assert b.open == {} and b.raised_today.total() == 2 and b.closed_today.total() == 2


def test_overdue_follows_the_deadline_and_acknowledgement() -> None:
    b = book()
    due = NOW + timedelta(minutes=10)
    b.apply(alarm(1, ack_due_at=due.isoformat()), NOW)
    b.apply(alarm(2, ack_due_at=(NOW - timedelta(minutes=1)).isoformat()), NOW)
    assert b.overdue == {"2"}
    assert not b.tick(NOW + timedelta(minutes=9))
    assert b.tick(NOW + timedelta(minutes=11)) and b.overdue == {"1", "2"}
    b.apply(alarm(1, version=2, state="acknowledged", ack_due_at=due.isoformat()), NOW)
    b.apply(alarm(2, version=2, acknowledged_at=NOW.isoformat()), NOW)
    assert b.overdue == set() and b.overdue_by_node.total() == 0
    # an old deadline left in the heap does not fire for a newer version
    b.apply(alarm(3, ack_due_at=due.isoformat()), NOW)
    b.apply(alarm(3, version=2, state="acknowledged", ack_due_at=due.isoformat()), NOW)
    assert not b.tick(NOW + timedelta(hours=1))


def test_yesterday_counts_in_the_trend_not_today() -> None:
    b = book()
    b.apply(alarm(1, first_seen=(NOW - timedelta(hours=10)).isoformat()), NOW)  # 23:00 local
    assert b.raised_today.total() == 0 and sum(b.trend.values()) == 1 and len(b.open) == 1
    b.prune_trend(NOW + timedelta(hours=15))
    assert sum(b.trend.values()) == 0


def test_ticker_order_is_most_recent_first() -> None:
    b = book()
    for i in (1, 2, 3):
        b.apply(alarm(i), NOW)
    b.apply(alarm(1, version=2), NOW)
    assert [e.id for e in b.recent_open()] == ["1", "3", "2"]


def test_checkins_count_windows_once() -> None:
    c = CheckinBook()
    c.load({"440304": {"expected": 10}}, [("440304001", CheckinBook.key("S1", NOW) or "")])
    assert c.expected_known and c.done.total() == 1
    same_window = {
        "subject_id": "S1",
        "street_id": "440304001",
        "window_start": "2026-11-25T09:00:00+08:00",
    }
    assert not c.apply(same_window)
    assert not c.apply({**same_window, "subject_id": "S2", "late": True})
    assert c.apply({**same_window, "subject_id": "S2"})
    assert c.done.total() == 2


def test_staffing_warns_only_with_a_roster() -> None:
    s = Staffing(minimum=2)
    assert not s.warning and s.as_json()["roster"] is False
    s.apply({"on_duty": 1, "officers": ["duty1"]})
    assert s.warning and s.as_json() == {
        "on_duty": 1,
        "minimum": 2,
        "warning": True,
        "roster": True,
    }
    s.apply({"on_duty": 2})
    assert not s.warning
