"""The booking rules' pure parts: working days and the join window."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from center.visits.rules import VisitRules, add_working_days, earliest_day, join_window, month_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = VisitRules(
    minutes=25,
    max_relatives=3,
    monthly_quota=1,
    lead_working_days=5,
    no_show_minutes=10,
    rejoin_grace_s=120,
    require_monitor=True,
    join_early_minutes=15,
    tz=SHANGHAI,
)


def test_working_days_skip_the_weekend() -> None:
    friday = date(2026, 11, 27)
    assert add_working_days(friday, 1) == date(2026, 11, 30)  # Monday
    assert add_working_days(friday, 5) == date(2026, 12, 4)  # next Friday
    assert add_working_days(date(2026, 11, 28), 1) == date(2026, 11, 30)  # from a Saturday
    assert add_working_days(friday, 0) == friday


def test_earliest_day_is_in_local_time() -> None:
    # 2026-11-26 17:00 UTC is already Friday 01:00 in Shanghai
    assert earliest_day(datetime(2026, 11, 26, 17, 0, tzinfo=UTC), RULES) == date(2026, 12, 4)
    assert earliest_day(datetime(2026, 11, 26, 15, 0, tzinfo=UTC), RULES) == date(2026, 12, 3)


def test_month_and_window() -> None:
    start = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 December, local
    assert month_of(start, SHANGHAI) == "2026-12"
    end = datetime(2026, 11, 30, 16, 55, tzinfo=UTC)
    opens, closes = join_window(start, end, RULES)
    assert (start - opens).total_seconds() == 15 * 60 and closes == end
