"""The booking rules' pure parts: working days and the join window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from center.visits.rules import VisitRules, add_working_days, earliest_day, join_window, month_of
from config.settings import SettingsError, load_settings

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


def test_holidays_and_make_up_weekends_move_the_earliest_day() -> None:
    """National Day 2026: Oct 1–8 off, Sunday Sep 27 and Saturday Oct 10 worked (调休)."""
    holidays = frozenset(date(2026, 10, d) for d in range(1, 9))
    weekends = frozenset({date(2026, 9, 27), date(2026, 10, 10)})
    # Friday Sep 25: working days Sep 27 (Sun, make-up), 28, 29, 30, then Oct 9
    assert add_working_days(date(2026, 9, 25), 5, holidays, weekends) == date(2026, 10, 9)
    assert add_working_days(date(2026, 9, 25), 6, holidays, weekends) == date(2026, 10, 10)
    # without the calendar the same lead time ends inside the holiday
    assert add_working_days(date(2026, 9, 25), 5) == date(2026, 10, 2)
    rules = replace(RULES, holidays=holidays, working_weekends=weekends)
    # booking on Friday Sep 25 at 10:00 Beijing time
    assert earliest_day(datetime(2026, 9, 25, 2, 0, tzinfo=UTC), rules) == date(2026, 10, 9)


def test_the_holiday_settings_parse_and_refuse_typos() -> None:
    settings = load_settings(
        env={
            "CENTER_VISIT_HOLIDAYS": "2026-10-01..2026-10-03, 2026-05-01",
            "CENTER_VISIT_WORKING_WEEKENDS": "2026-09-27",
        }
    )
    assert settings.visit_holiday_days == {
        date(2026, 10, 1),
        date(2026, 10, 2),
        date(2026, 10, 3),
        date(2026, 5, 1),
    }
    assert settings.visit_working_weekend_days == {date(2026, 9, 27)}
    for name, bad in (
        ("CENTER_VISIT_HOLIDAYS", "2026-13-01"),
        ("CENTER_VISIT_HOLIDAYS", "2026-10-08..2026-10-01"),
        ("CENTER_VISIT_HOLIDAYS", "2026-01-01..2028-01-01"),
        ("CENTER_VISIT_WORKING_WEEKENDS", "2026-09-27..2026-09-28"),
        ("CENTER_VISIT_WORKING_WEEKENDS", "tomorrow"),
    ):
        with pytest.raises(SettingsError, match=name.removeprefix("CENTER_").lower()):
            load_settings(env={name: bad})
