"""The random campaign: the draw respects share, weights, periods and the no-repeat rule (a
pure function over a seeded source), and on a real server the day's draw runs once, is
assigned to the offices, is scoped, and counts a finished spot-check as done."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from alerts.spotcheck_campaign import CampaignPolicy, Candidate, draw, due_at
from alerts.spotcheck_models import SpotCheckAssignment
from center.clock import FakeClock
from center.models import Subject
from tests.conftest import AppFactory, demo_credentials, login
from web import keys

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def fake_clock() -> FakeClock:
    """Late in the local evening (23:50 in Shenzhen), so the step to the next local midnight
    is ten minutes of timers rather than fifteen hours of a whole demo city's windows."""
    return FakeClock(datetime(2026, 11, 25, 23, 50, tzinfo=TZ))


def policy(**kw: object) -> CampaignPolicy:
    args: dict[str, object] = {
        "share": 0.1,
        "weights": "strict=3,normal=2,lenient=1",
        "alarm_weight": 1.0,
        "alarm_days": 7,
        "periods": "09:00-11:30,14:30-17:00; S2=10:00-10:30",
        "seed": "test",
    }
    args.update(kw)
    return CampaignPolicy.parse(**args)  # type: ignore[arg-type]


def people(n: int, level: str, alarms: int = 0, street: str = "S1") -> list[Candidate]:
    return [
        Candidate(f"{level}-{alarms}-{street}-{i}", level, street, "D", alarms) for i in range(n)
    ]


def test_share_and_seed() -> None:
    pool = people(600, "normal") + people(400, "lenient")
    p = policy()
    first = draw(pool, p, yesterday=frozenset(), rng=p.rng(date(2026, 12, 2)))
    again = draw(pool, p, yesterday=frozenset(), rng=p.rng(date(2026, 12, 2)))
    other = draw(pool, p, yesterday=frozenset(), rng=p.rng(date(2026, 12, 3)))
    assert len(first) == 100 and len({c.id for c, _ in first}) == 100
    assert [c.id for c, _ in first] == [c.id for c, _ in again]  # a seeded day is reproducible
    assert [c.id for c, _ in first] != [c.id for c, _ in other]
    assert len(draw(pool, policy(share=0.0), yesterday=frozenset(), rng=random.Random(1))) == 0


def test_weights_by_level_and_recent_alarms() -> None:
    pool = people(500, "strict") + people(500, "lenient") + people(500, "lenient", alarms=4)
    p = policy(share=0.05)
    counts: Counter[str] = Counter()
    for seed in range(200):
        for c, w in draw(pool, p, yesterday=frozenset(), rng=random.Random(seed)):
            counts[f"{c.level}-{c.alarms}"] += 1
            assert w == p.weight(c)
    # weights 3 (strict), 1 (lenient), 1 + 4 × 1 = 5 (lenient with four alarms)
    assert counts["lenient-4"] > counts["strict-0"] > counts["lenient-0"]
    assert 2.0 < counts["strict-0"] / counts["lenient-0"] < 4.5


def test_no_repeat_unless_strict() -> None:
    pool = people(50, "normal") + people(50, "strict")
    p = policy(share=0.5)
    yesterday = frozenset(c.id for c in pool)
    today = draw(pool, p, yesterday=yesterday, rng=random.Random(7))
    assert today and all(c.level == "strict" for c, _ in today)
    assert len(today) == 50  # the share is of all subjects; only the strict could be drawn


def test_due_times_fall_in_the_office_periods() -> None:
    p = policy()
    rng = random.Random(3)
    day = date(2026, 12, 2)
    for _ in range(500):
        local = due_at(day, p.periods_of("S1"), TZ, rng).astimezone(TZ)
        minute = local.hour * 60 + local.minute
        assert local.date() == day
        assert 540 <= minute < 690 or 870 <= minute < 1020
        office = due_at(day, p.periods_of("S2"), TZ, rng).astimezone(TZ)
        assert (office.hour, office.minute // 30) == (10, 0)
    with pytest.raises(ValueError):
        policy(periods="11:00-10:00")


async def test_daily_draw_runs_once_and_counts_done(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    settings = {
        "demo": True,
        "database_url": database_url,
        "spotcheck_campaign_share": 0.05,
        "spotcheck_campaign_seed": "demo",
    }
    first = await make_client(**settings)
    await first.app[keys.TIMERS].fire_due()
    second = await make_client(**settings)  # a second instance (or a restart) draws nothing
    await second.app[keys.TIMERS].fire_due()
    async with first.app[keys.SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(SpotCheckAssignment))
        subjects = await session.scalar(
            select(func.count()).select_from(Subject).where(Subject.active.is_(True))
        )
    assert total == round(0.05 * (subjects or 0))
    csrf = await login(first, "duty1")
    city = await (await first.get("/api/v1/spotchecks/campaign")).json()
    assert city["due"] == total and city["done"] == 0 and len(city["offices"]) > 1
    item = city["offices"][0]["items"][0]
    resp = await first.post(
        "/api/v1/spotchecks",
        json={"subject_id": item["subject_id"]},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201
    await fake_clock.advance(61)
    await first.app[keys.TIMERS].fire_due()
    after = await (await first.get("/api/v1/spotchecks/campaign")).json()
    assert after["done"] == 1
    done = next(i for i in after["offices"][0]["items"] if i["done"])
    assert done["state"] == "unreachable" and done["subject_id"] == item["subject_id"]
    await login(first, "street1")
    own = demo_credentials(first)["users"]["street1"]["jurisdiction"]
    mine = await (await first.get("/api/v1/spotchecks/campaign")).json()
    assert {o["street_id"] for o in mine["offices"]} <= {own}
    assert mine["due"] == sum(o["due"] for o in city["offices"] if o["street_id"] == own)
    foreign = next(o["street_id"] for o in city["offices"] if o["street_id"] != own)
    resp = await first.get(f"/api/v1/spotchecks/campaign?street={foreign}")
    assert resp.status == 404
    resp = await first.get("/api/v1/spotchecks/campaign?street=440304001999")
    assert resp.status == 404
    # the next local day is drawn at its midnight
    await fake_clock.set(datetime(2026, 11, 26, 0, 0, 30, tzinfo=TZ))
    await first.app[keys.TIMERS].fire_due()
    async with first.app[keys.SESSIONMAKER]() as session:
        days = set(await session.scalars(select(SpotCheckAssignment.day)))
    assert days == {"2026-11-25", "2026-11-26"}
