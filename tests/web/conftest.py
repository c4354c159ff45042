"""Fixtures for the rooms API and rtc signaling: a demo app (SQLite, fake clock) and
logged-in websocket signalers.

One TestClient has one cookie jar, so :func:`user` logs in (the jar now speaks for that
user) and returns the CSRF token and the session token; websockets authenticate with the
session token, so several users can be in one room from one test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from media.component import MediaService
from tests.conftest import AppFactory, demo_credentials
from tests.web.ws.rtc_peer import WsSignal
from web.keys import MEDIA


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    csrf: str
    token: str


async def user(client: TestClient, username: str) -> Login:
    password = demo_credentials(client)["users"][username]["password"]
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return Login(username, body["csrf_token"], resp.cookies["center_session"].value)


async def create_room(client: TestClient, login: Login, **body: Any) -> dict[str, Any]:
    """POST /api/v1/rooms as ``login`` (who must be the jar's current user)."""
    resp = await client.post("/api/v1/rooms", json=body, headers={"X-CSRF-Token": login.csrf})
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def signal_for(client: TestClient, login: Login) -> WsSignal:
    ws = await client.ws_connect("/ws")
    signal = WsSignal(ws)
    reply = await signal.call("auth", token=login.token)
    assert reply["success"], reply
    return signal


def media(client: TestClient) -> MediaService:
    return client.app[MEDIA]


def rtc_tasks() -> list[str]:
    """Per-participant tasks (negotiation) still running."""
    return sorted(
        t.get_name()
        for t in asyncio.all_tasks()
        if not t.done() and t.get_name().startswith("negotiate ")
    )


@pytest.fixture
async def app_client(make_client: AppFactory) -> AsyncIterator[TestClient]:
    client = await make_client(demo=True)
    yield client
