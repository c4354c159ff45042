"""Helpers for the alarm engine tests: demo apps, the integration key, clock stepping."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from alerts.engine import AlertEngine
from alerts.models import Alarm
from center.bus import BusMessage
from center.clock import FakeClock
from center.models import Subject
from tests.conftest import demo_credentials
from web import keys
from web.components import ALERTS

_ids = itertools.count(1)

# The fake clock starts at 2026-11-25 01:00 UTC = 09:00 in Shanghai (a Wednesday), inside
# the strict plan's 08:00-10:00 window, whose deadline (with 10 min grace) is 10:10 local.
STRICT_WINDOW_START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
STRICT_DEADLINE = datetime(2026, 11, 25, 2, 10, tzinfo=UTC)


def engine_of(client: TestClient) -> AlertEngine:
    return client.app[ALERTS]


def key_headers(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_credentials(client)['integration_key']}"}


def event_id(prefix: str = "ev") -> str:
    return f"{prefix}-{next(_ids)}-{id(_ids)}"


async def subject_of_level(client: TestClient, level: str, n: int = 0) -> Subject:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = (
            (
                await session.execute(
                    select(Subject).where(Subject.level == level).order_by(Subject.id)
                )
            )
            .scalars()
            .all()
        )
    return rows[n]


async def step_to(client: TestClient, clock: FakeClock, when: datetime) -> None:
    """Move the clock and wait until the watcher has evaluated every deadline up to it."""
    if when > clock.now():
        await clock.set(when)
    await asyncio.wait_for(engine_of(client).watcher.wait_processed(when), 60)


async def alarms_for(client: TestClient, subject_id: str) -> list[Alarm]:
    async with client.app[keys.SESSIONMAKER]() as session:
        return list(
            (
                await session.execute(
                    select(Alarm).where(Alarm.subject_id == subject_id).order_by(Alarm.id)
                )
            )
            .scalars()
            .all()
        )


def record_bus(client: TestClient, topic: str = "alarms") -> list[BusMessage]:
    seen: list[BusMessage] = []
    client.app[keys.BUS].subscribe(topic, seen.append)
    return seen


async def post_checkin(
    client: TestClient, subject_id: str, at: datetime, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body = {
        "event_id": extra.pop("event_id", None) or event_id("ci"),
        "subject_id": subject_id,
        "at": at.isoformat(),
        "source": extra.pop("source", "app"),
        **extra,
    }
    resp = await client.post("/api/v1/checkins", json=body, headers=key_headers(client))
    return resp.status, await resp.json()


def fix(
    subject_id: str, at: datetime, lat: float, lon: float, device: str = "bracelet"
) -> dict[str, Any]:
    return {
        "event_id": event_id("fx"),
        "subject_id": subject_id,
        "device": device,
        "at": at.isoformat(),
        "lat": lat,
        "lon": lon,
        "accuracy_m": 20,
    }
