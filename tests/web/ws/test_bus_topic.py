"""Two server processes on one Redis and one PostgreSQL: an alarm raised through instance A
reaches a websocket client on instance B, and a client of A resumes on B after A stops,
missing nothing (the replay history lives in Redis Streams)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from config.demo_city import generate_subjects
from tests.conftest import (
    REDIS_URL,
    create_pg_database,
    drop_pg_database,
    need_postgres,
    need_redis,
)
from tests.e2e.conftest import QUIET_ENV, api
from tests.procs import ServerProcess, start_server

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
SUBJECTS = generate_subjects()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    need_redis()
    need_postgres()
    db = await create_pg_database()
    env = {
        **QUIET_ENV,
        "CENTER_DATABASE_URL": db,
        "CENTER_REDIS_URL": REDIS_URL,
        "CENTER_REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}:",
    }
    data = tmp_path / "data"
    servers: list[ServerProcess] = []
    try:
        # B starts after A so it finds the demo credentials A wrote in the shared data dir.
        for _ in range(2):
            servers.append(await asyncio.to_thread(start_server, data, env=env))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
        await drop_pg_database(db)


class Feed:
    """A websocket client of one server, subscribed to ``alarms``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.result: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls, http: aiohttp.ClientSession, server: ServerProcess, since: dict[str, Any] | None = None
    ) -> Feed:
        ws = await http.ws_connect(f"{server.url}/ws")
        feed = cls(ws)
        await ws.send_json({"id": 1, "type": "auth", "token": server.credentials()["wall_token"]})
        assert (await ws.receive_json(timeout=10))["success"]
        msg: dict[str, Any] = {"id": 2, "type": "subscribe", "topic": "alarms"}
        if since:
            msg["since"] = since
        await ws.send_json(msg)
        reply = await ws.receive_json(timeout=10)
        assert reply["success"], reply
        feed.result = reply["result"]
        return feed

    async def next_events(self, n: int) -> list[dict[str, Any]]:
        while len(self.events) < n:
            msg = await self.ws.receive_json(timeout=20)
            if msg["type"] == "event":
                self.events.append(msg["event"])
        return self.events

    @property
    def position(self) -> dict[str, Any]:
        last = self.events[-1] if self.events else self.result
        return {"epoch": last.get("epoch", self.result["epoch"]), "seq": last["seq"]}


def raise_sos(server: ServerProcess, index: int) -> None:
    subject = SUBJECTS[index]
    status, body = api(
        server,
        "POST",
        "/api/v1/device-events",
        {
            "event_id": f"two-{uuid.uuid4().hex}",
            "subject_id": subject.key,
            "device_id": f"b-{subject.key}",
            "kind": "sos",
            "at": datetime.now(UTC).isoformat(),
        },
        token=server.credentials()["integration_key"],
    )
    assert status < 300, body


async def test_alarm_from_a_reaches_b_and_resume_on_b(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    async with aiohttp.ClientSession() as http:
        on_b = await Feed.open(http, b)
        on_a = await Feed.open(http, a)
        await asyncio.to_thread(raise_sos, a, 0)
        (event,) = await on_b.next_events(1)
        assert event["type"] == "alarm.raised" and event["data"]["kind"] == "sos"
        assert "*" in event["data"]["subject_name"]
        await on_a.next_events(1)
        position = on_a.position
        assert position == on_b.position  # one stream, one seq, whichever instance

        await asyncio.to_thread(a.stop)
        await on_a.ws.close()
        for i in (1, 2, 3):
            await asyncio.to_thread(raise_sos, b, i)
        resumed = await Feed.open(http, b, since=position)
        assert resumed.result["recovered"] is True
        missed = resumed.result["events"]
        end = resumed.result["seq"]
        # exactly what a client that never left saw in the same range, in order
        while on_b.position["seq"] < end:
            await on_b.next_events(len(on_b.events) + 1)
        seen = [e for e in on_b.events if position["seq"] < e["seq"] <= end]
        assert [e["seq"] for e in missed] == list(range(position["seq"] + 1, end + 1))
        assert [(e["seq"], e["type"], e["data"]["id"]) for e in missed] == [
            (e["seq"], e["type"], e["data"]["id"]) for e in seen
        ]
        raised = [e for e in missed if e["type"] == "alarm.raised"]
        assert len(raised) == 3 and all(e["data"]["kind"] == "sos" for e in raised)
        # and it stays live after the replay, with no gap
        await asyncio.to_thread(raise_sos, b, 4)
        live = await resumed.next_events(1)
        assert live[0]["seq"] == end + 1
        await resumed.ws.close()
        await on_b.ws.close()
