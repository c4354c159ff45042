"""Issue 11, failure 10: two instances on one PostgreSQL and Redis, just after a deadline,
each sent late check-ins for the same subjects in opposite orders at once. They deadlocked
in ``mark_late``, answered 500 and left alarms ``no_checkin``; now no request fails and every
alarm whose window has a stored late check-in ends ``late_checkin``, each alarm once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from alerts.models import Alarm
from center.clock import FakeClock
from center.models import Subject
from tests.alerts.conftest import STRICT_DEADLINE, engine_of, key_headers, step_to
from tests.conftest import (
    REDIS_URL,
    AppFactory,
    create_pg_database,
    drop_pg_database,
    need_postgres,
    need_redis,
)
from web import keys

_seq = itertools.count()


def _items(subject_ids: list[str], at: str, tag: str) -> list[dict[str, Any]]:
    return [
        {"event_id": f"late-{tag}-{next(_seq)}", "subject_id": sid, "at": at, "source": "app"}
        for sid in subject_ids
    ]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """PostgreSQL only: SQLite has one writer, so the deadlock is PostgreSQL's."""
    need_postgres()
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


async def test_late_checkins_on_two_instances_all_reach_their_alarms(
    make_client: AppFactory, pg_url: str, fake_clock: FakeClock
) -> None:
    database_url = pg_url
    need_redis()
    common = {"redis_url": REDIS_URL, "redis_key_prefix": f"late{next(_seq)}:"}
    a = await make_client(demo=True, database_url=database_url, **common)
    b = await make_client(demo=True, database_url=database_url, **common)
    await fake_clock.set(STRICT_DEADLINE + timedelta(seconds=1))
    for c in (a, b):
        await step_to(c, fake_clock, fake_clock.now())
    async with a.app[keys.SESSIONMAKER]() as session:
        ids = list(
            await session.scalars(
                select(Subject.id).where(Subject.level == "strict").order_by(Subject.id).limit(250)
            )
        )
    assert len(ids) >= 50
    await fake_clock.advance(60)
    at = fake_clock.now().isoformat()
    statuses: list[int] = []

    async def send(client: Any, items: list[dict[str, Any]]) -> None:
        resp = await client.post(
            "/api/v1/checkins", json={"items": items}, headers=key_headers(client)
        )
        statuses.append(resp.status)
        body = await resp.json()
        assert all(r["status"] == "accepted" for r in body["results"]), body

    for _round in range(2):
        jobs = []
        for client, order in ((a, ids), (b, ids[::-1])):
            batch = _items(order, at, "a" if client is a else "b") + _items(order, at, "x")
            jobs += [send(client, batch[i : i + 100]) for i in range(0, len(batch), 100)]
        await asyncio.gather(*jobs)
    assert statuses and all(s < 500 for s in statuses), statuses
    for c in (a, b):  # the maintenance round's reconciliation (any instance) repairs the rest
        await engine_of(c).reconcile_late()
    async with a.app[keys.SESSIONMAKER]() as session:
        rows = (
            await session.execute(
                select(Alarm.subject_id, Alarm.kind, func.count())
                .where(Alarm.subject_id.in_(ids), Alarm.kind.in_(("no_checkin", "late_checkin")))
                .group_by(Alarm.subject_id, Alarm.kind)
            )
        ).all()
    kinds = {sid: kind for sid, kind, _ in rows}
    assert all(n == 1 for _, _, n in rows), rows  # each alarm once
    assert set(kinds) == set(ids)
    assert {k for k in kinds.values()} == {"late_checkin"}, [
        s for s, k in kinds.items() if k != "late_checkin"
    ]
