"""Rooms across instances with two ``python run.py`` processes on one Redis and one
PostgreSQL: a call opened on A, one aiortc party logged in (HTTP) and signalling (``/ws``)
on each server, both decode each other's video; then A is killed (SIGKILL: no goodbye, its
lease simply stops being renewed) and the party on B is told ``bye`` ``owner_lost``."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import aiohttp
import pytest

from media.cluster import OWNER_LOST
from tests.conftest import (
    REDIS_URL,
    create_pg_database,
    drop_pg_database,
    need_postgres,
    need_redis,
)
from tests.e2e.conftest import QUIET_ENV
from tests.procs import ServerProcess, start_server
from tests.web.ws.rtc_peer import WsPeer, WsSignal, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


async def _login(http: aiohttp.ClientSession, server: ServerProcess, username: str) -> str:
    password = server.credentials()["users"][username]["password"]
    resp = await http.post(
        f"{server.url}/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["csrf_token"])


async def test_two_servers_one_party_each_then_the_owner_is_killed(tmp_path: Path) -> None:
    need_redis()
    need_postgres()
    db = await create_pg_database()
    env = {
        **QUIET_ENV,
        "CENTER_DATABASE_URL": db,
        "CENTER_REDIS_URL": REDIS_URL,
        "CENTER_REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}:",
        "CENTER_MEDIA_ROOM_LEASE_S": "3",
    }
    data = tmp_path / "data"
    servers: list[ServerProcess] = []
    try:
        # B starts after A so it finds the demo credentials A wrote in the shared data dir.
        for _ in range(2):
            servers.append(await asyncio.to_thread(start_server, data, env=env))
        owner, other = servers
        jar_a, jar_b = aiohttp.CookieJar(unsafe=True), aiohttp.CookieJar(unsafe=True)
        async with (
            aiohttp.ClientSession(cookie_jar=jar_a) as http_a,
            aiohttp.ClientSession(cookie_jar=jar_b) as http_b,
        ):
            csrf = await _login(http_a, owner, "futian")
            await _login(http_b, other, "street1")
            resp = await http_a.post(
                f"{owner.url}/api/v1/rooms",
                json={"kind": "call", "participants": ["street1"], "record": False},
                headers={"X-CSRF-Token": csrf},
            )
            assert resp.status == 201, await resp.text()
            room = (await resp.json())["id"]
            resp = await http_b.get(f"{other.url}/api/v1/rooms/{room}")  # visible on B too
            assert resp.status == 200, await resp.text()
            sig_a = WsSignal(await http_a.ws_connect(f"{owner.url}/ws"))
            sig_b = WsSignal(await http_b.ws_connect(f"{other.url}/ws"))
            a = WsPeer(sig_a, room, base=10_000)
            b = WsPeer(sig_b, room, base=20_000)
            try:
                assert (await sig_a.call("auth"))["success"]
                assert (await sig_b.call("auth"))["success"]
                assert (await a.join())["success"]
                joined = await b.join()
                assert joined["success"], joined
                await a.connect()
                await b.connect()
                await wait_for(
                    lambda: (v := a.video_from(b.participant)) is not None and len(v.valid) > 20
                )
                await wait_for(
                    lambda: (v := b.video_from(a.participant)) is not None and len(v.valid) > 20
                )
                assert min(a.video_from(b.participant).valid) >= 20_000  # type: ignore[union-attr]
                assert min(b.video_from(a.participant).valid) < 20_000  # type: ignore[union-attr]

                await asyncio.to_thread(owner.stop, signal.SIGKILL)
                await wait_for(lambda: any(e["type"] == "bye" for e in sig_b.event_log(b.join_id)))
                assert sig_b.event_log(b.join_id)[-1]["data"] == {"reason": OWNER_LOST}
                assert (await sig_b.call("ping"))["success"]  # B itself is fine
            finally:
                await sig_a.close()
                await sig_b.close()
                await a.close()
                await b.close()
        assert await asyncio.to_thread(other.stop) == 0
        assert "Traceback" not in other.log()
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop, signal.SIGKILL)
        await drop_pg_database(db)
