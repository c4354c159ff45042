"""The demo simulator's plan: about 94% on time, a few late, the rest missing."""

from __future__ import annotations

from alerts.simulator import Simulator
from center.clock import FakeClock
from tests.alerts.conftest import engine_of
from tests.conftest import AppFactory
from web import keys


async def test_simulator_plans_each_window_once(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, demo_window_s=90)
    engine = engine_of(client)
    # (simulator off in tests: short windows only apply with it on, so use the level plans)
    sim = Simulator(
        client.app[keys.SETTINGS], engine, client.app[keys.DEMO]["integration_key"], seed=1
    )
    subjects = list(engine.directory.ids)
    ts = fake_clock.now().timestamp()
    sim._plan(subjects, ts)
    planned = len(sim._due)
    open_now = sum(
        1
        for idx in range(len(subjects))
        if engine.plans.plans[engine.directory.plan[idx]].current_window(ts) is not None
    )
    assert open_now > 0
    assert 0.9 * open_now <= planned <= 0.995 * open_now
    sim._plan(subjects, ts + 1)
    assert len(sim._due) == planned  # one decision per subject and window
    deadlines = {
        sid: engine.plans.plans[engine.directory.plan[engine.directory.index[sid]]].current_window(
            ts
        )
        for sid in subjects
    }
    late = sum(1 for at, sid in sim._due if (w := deadlines[sid]) and at >= w.deadline)
    assert 0 < late < 0.06 * planned
