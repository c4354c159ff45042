"""The dashboard helpers agree with what the watcher and ingestion did."""

from __future__ import annotations

from datetime import timedelta

from alerts.stats import checkin_stats_today, open_alarm_counts
from center.clock import FakeClock
from tests.alerts.conftest import (
    STRICT_DEADLINE,
    engine_of,
    post_checkin,
    step_to,
    subject_of_level,
)
from tests.conftest import AppFactory
from web import keys


async def test_checkin_stats_and_open_counts(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    app = client.app
    kept = await subject_of_level(client, "strict")
    status, _ = await post_checkin(client, kept.id, fake_clock.now())
    assert status == 201
    await step_to(client, fake_clock, STRICT_DEADLINE + timedelta(seconds=1))
    levels = engine_of(client).directory.levels
    n_strict, n_normal = levels.count("strict"), levels.count("normal")
    async with app[keys.SESSIONMAKER]() as session:
        stats = await checkin_stats_today(
            session, app[keys.TREE], app[keys.SETTINGS].tz, fake_clock.now()
        )
        counts = await open_alarm_counts(session)
    assert set(stats) >= {n.id for n in app[keys.TREE].by_level("district")}
    total = {k: sum(d[k] for d in stats.values()) for k in ("expected", "done", "missed")}
    # 10:10 local: the strict morning window and the normal day window have opened
    assert total["expected"] == n_strict + n_normal
    assert total["done"] == 1
    assert total["missed"] == n_strict - 1
    assert stats[kept.district_id]["done"] == 1
    assert sum(c["count"] for c in counts if c["kind"] == "no_checkin") == n_strict - 1
    assert all(c["severity"] == "high" for c in counts)
