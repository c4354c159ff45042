"""Plans and windows as pure functions: parsing, local time, lateness, severity overrides."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.plans import Plan, PlanError, parse_spec
from alerts.severity import SeverityTable

SH = ZoneInfo("Asia/Shanghai")


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=SH).timestamp()


def test_parse_daily_weekly_every() -> None:
    assert parse_spec("daily 08:00-10:00; daily 18:00-20:00") == (
        86400,
        ((8 * 3600, 10 * 3600), (18 * 3600, 20 * 3600)),
    )
    period, windows = parse_spec("mon,wed 08:00-20:00")
    assert period == 7 * 86400 and windows == (
        (8 * 3600, 20 * 3600),
        (2 * 86400 + 8 * 3600, 2 * 86400 + 20 * 3600),
    )
    assert parse_spec("every 90s open 60s") == (90, ((0, 60),))
    for bad in ("", "daily 10:00-08:00", "sometimes 08:00-09:00", "daily 25:00-26:00", "daily 8-9"):
        with pytest.raises(PlanError):
            parse_spec(bad)
    with pytest.raises(PlanError):
        Plan("x", "daily 08:00-10:00; daily 10:05-12:00", 600, SH)  # grace runs into the next


def test_windows_are_local_time() -> None:
    plan = Plan("strict", "daily 08:00-10:00; daily 18:00-20:00", 600, SH)
    w, late = plan.window_for(ts(2026, 11, 25, 9, 0), 7200)
    assert w is not None and not late
    assert w.start_dt == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert w.deadline_dt == datetime(2026, 11, 25, 2, 10, tzinfo=UTC)
    w, late = plan.window_for(ts(2026, 11, 25, 10, 5), 7200)  # in the grace period
    assert w is not None and not late
    w, late = plan.window_for(ts(2026, 11, 25, 11, 0), 7200)
    assert w is not None and late and w.start == ts(2026, 11, 25, 8, 0)
    assert plan.window_for(ts(2026, 11, 25, 13, 0), 7200) == (None, False)
    closing = list(plan.windows_closing(ts(2026, 11, 25, 0, 0), ts(2026, 11, 26, 0, 0)))
    assert [w.deadline for w in closing] == [ts(2026, 11, 25, 10, 10), ts(2026, 11, 25, 20, 10)]
    assert plan.next_window_closing_after(ts(2026, 11, 25, 20, 10)).start == ts(2026, 11, 26, 8, 0)


def test_weekly_plan_starts_on_monday() -> None:
    plan = Plan("lenient", "mon 08:00-20:00", 0, SH)
    w = plan.next_window_closing_after(ts(2026, 11, 25, 9, 0))  # a Wednesday
    assert datetime.fromtimestamp(w.start, SH) == datetime(2026, 11, 30, 8, 0, tzinfo=SH)
    assert len(plan.windows_starting(ts(2026, 11, 23, 0, 0), ts(2026, 11, 30, 0, 0))) == 1


def test_severity_table_overrides() -> None:
    table = SeverityTable("no_checkin.normal=high, low_battery=medium")
    assert table.severity("no_checkin", "normal") == "high"
    assert table.severity("no_checkin", "lenient") == "low"
    assert table.severity("low_battery", "strict") == "medium"
    assert table.severity("sos", "lenient") == "critical"
    for bad in ("nope=high", "sos=urgent", "sos.vip=high", "sos"):
        with pytest.raises(ValueError):
            SeverityTable(bad)
