"""The HTTP error middleware: every failure through the one error map (center.errors)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from media.errors import RoomFullError
from tests.conftest import make_settings
from web import keys
from web.app import create_app
from web.policy import public

_DOWN_REDIS = "redis://127.0.0.1:1/0"
"""Nothing listens on port 1: the RedisBus starts degraded and every publish fails."""


@public
async def _publish(request: web.Request) -> web.Response:
    """Publishes the way a handler does that cannot lose its event (Bus.publish, not notify)."""
    await request.app[keys.BUS].publish("duty", "test.ping", {"n": 1})
    return web.json_response({"ok": True})


@public
async def _media_error(request: web.Request) -> web.Response:
    raise RoomFullError("the echo room is in use")


@public
async def _bug(request: web.Request) -> web.Response:
    raise KeyError("secret internals")


async def _client(aiohttp_client: Any, tmp_path: Path, fake_clock: Any, **kw: Any) -> TestClient:
    app = create_app(make_settings(tmp_path, **kw), clock=fake_clock)
    app.router.add_post("/api/v1/test/publish", _publish)
    app.router.add_get("/api/v1/test/media", _media_error)
    app.router.add_get("/api/v1/test/bug", _bug)
    client: TestClient = await aiohttp_client(app)
    return client


async def test_bus_outage_is_503_unavailable(
    aiohttp_client: Any, tmp_path: Path, fake_clock: Any
) -> None:
    client = await _client(aiohttp_client, tmp_path, fake_clock, redis_url=_DOWN_REDIS)
    resp = await client.post("/api/v1/test/publish", json={})
    assert resp.status == 503
    assert await resp.json() == {
        "error": {"code": "unavailable", "message": "the event bus is unavailable; retry shortly"}
    }


async def test_media_error_answers_its_declared_status(
    aiohttp_client: Any, tmp_path: Path, fake_clock: Any
) -> None:
    client = await _client(aiohttp_client, tmp_path, fake_clock)
    resp = await client.get("/api/v1/test/media")
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "room_full"


async def test_unexpected_error_is_500_logged_once(
    aiohttp_client: Any, tmp_path: Path, fake_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await _client(aiohttp_client, tmp_path, fake_clock)
    with caplog.at_level(logging.ERROR, logger="web.middleware"):
        resp = await client.get("/api/v1/test/bug")
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "internal_error" and "secret" not in body["error"]["message"]
    logged = [r for r in caplog.records if r.name == "web.middleware"]
    assert len(logged) == 1 and logged[0].exc_info is not None
