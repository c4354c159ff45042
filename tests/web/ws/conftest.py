"""Helpers for websocket tests: a small protocol client over aiohttp's test client, and alarm
JSON in the shape the alarm engine publishes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from center.bus import Bus
from tests.conftest import demo_credentials
from web import keys

TIMEOUT = 10.0
_ALARM_IDS = itertools.count(1)


class WsClient:
    """Keeps every message received, so a test can wait for results and events by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 1
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.closed = asyncio.Event()

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(msg.json())
                    self._changed.set()
        finally:
            self.closed.set()
            self._changed.set()

    async def send(self, type: str, **fields: Any) -> int:
        msg_id = self.next_id
        self.next_id += 1
        await self.ws.send_json({"id": msg_id, "type": type, **fields})
        return msg_id

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], Any], limit_s: float = TIMEOUT
    ) -> Any:
        async def _wait() -> Any:
            while True:
                found = predicate(self.messages)
                if found:
                    return found
                if self.closed.is_set():
                    raise AssertionError(
                        f"closed ({self.ws.close_code}) before: {self.messages[-5:]}"
                    )
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), limit_s)

    async def result(self, msg_id: int) -> dict[str, Any]:
        return await self.wait_for(  # type: ignore[no-any-return]
            lambda msgs: next(
                (m for m in msgs if m.get("id") == msg_id and m["type"] == "result"), None
            )
        )

    async def call(self, type: str, **fields: Any) -> dict[str, Any]:
        return await self.result(await self.send(type, **fields))

    def events(self, sub_id: int) -> list[dict[str, Any]]:
        return [m["event"] for m in self.messages if m["type"] == "event" and m["id"] == sub_id]

    async def wait_events(
        self, sub_id: int, predicate: Callable[[list[dict[str, Any]]], Any]
    ) -> list[dict[str, Any]]:
        await self.wait_for(lambda _: predicate(self.events(sub_id)))
        return self.events(sub_id)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


async def connect(client: TestClient, **kwargs: Any) -> WsClient:
    ws = await client.ws_connect("/ws", **kwargs)
    return WsClient(ws)


async def authed(client: TestClient, token: str | None = None) -> WsClient:
    """Connect and authenticate: ``token`` or, without one, the client's session cookie."""
    ws = await connect(client)
    fields = {"token": token} if token else {}
    res = await ws.call("auth", **fields)
    assert res["success"], res
    return ws


def wall_token(client: TestClient) -> str:
    return str(demo_credentials(client)["wall_token"])


def bus_of(client: TestClient) -> Bus:
    return client.app[keys.BUS]


def street_of(client: TestClient, username: str) -> str:
    return str(demo_credentials(client)["users"][username]["jurisdiction"])


def alarm(
    street_id: str,
    *,
    alarm_id: str | None = None,
    kind: str = "no_checkin",
    severity: str = "high",
    state: str = "open",
    version: int = 1,
    name: str = "张三丰",
    first_seen: str = "2026-11-25T01:00:00+00:00",
    **extra: Any,
) -> dict[str, Any]:
    """Alarm JSON as the alarm engine publishes it (full subject name and personal fields)."""
    return {
        "id": alarm_id or f"A{next(_ALARM_IDS):06d}",
        "kind": kind,
        "severity": severity,
        "state": state,
        "subject_id": "S000001",
        "subject_name": name,
        "id_number": "440301199001011234",
        "phone": "17000001234",
        "level": "strict",
        "street_id": street_id,
        "district_id": street_id[:6],
        "version": version,
        "count": 1,
        "first_seen": first_seen,
        "last_seen": first_seen,
        "suppressed": False,
        **extra,
    }
