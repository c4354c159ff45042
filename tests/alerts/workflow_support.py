"""Fixtures for the workflow tests: a demo app, officers, and alarms raised like the engine."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from alerts.models import Alarm
from alerts.serialize import alarm_json, columns
from center.models import Subject
from tests.conftest import demo_credentials, login
from web import keys

_seq = itertools.count(1)


async def subject_in(client: TestClient, street_id: str) -> Subject:
    async with client.app[keys.SESSIONMAKER]() as session:
        subject = await session.scalar(
            select(Subject).where(Subject.street_id == street_id).order_by(Subject.id).limit(1)
        )
    assert subject is not None
    return subject


def street_of(client: TestClient, username: str) -> str:
    return str(demo_credentials(client)["users"][username]["jurisdiction"])


async def raise_alarm(
    client: TestClient,
    *,
    street_of_user: str = "street1",
    kind: str = "no_checkin",
    severity: str = "high",
    at: datetime | None = None,
    publish: bool = True,
) -> dict[str, Any]:
    """Insert an alarm as the engine does and announce it with ``alarm.raised``."""
    app = client.app
    subject = await subject_in(client, street_of(client, street_of_user))
    now = at or app[keys.CLOCK].now()
    n = next(_seq)
    async with app[keys.SESSIONMAKER]() as session:
        alarm = Alarm(
            kind=kind,
            severity=severity,
            state="new",
            suppressed=False,
            subject_id=subject.id,
            level=subject.level,
            street_id=subject.street_id,
            district_id=subject.district_id,
            version=1,
            count=1,
            first_seen=now,
            last_seen=now,
            dedup_key=f"test:{n}:{subject.id}",
            open_key=f"test:{n}:{subject.id}",
            details="{}",
            created_at=now,
            updated_at=now,
        )
        session.add(alarm)
        await session.commit()
        data = alarm_json(columns(alarm), subject.name)
    if publish:
        await app[keys.BUS].publish("alarms", "alarm.raised", data)
    return data


@asynccontextmanager
async def browser(client: TestClient, username: str) -> AsyncIterator[tuple[Any, str]]:
    """Another officer's browser on the same server: its own cookie jar and CSRF token."""
    password = str(demo_credentials(client)["users"][username]["password"])
    async with aiohttp.ClientSession(
        base_url=str(client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        csrf = await login(session, username, password)  # type: ignore[arg-type]
        yield session, csrf
