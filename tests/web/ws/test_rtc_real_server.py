"""An aiortc client drives the whole websocket protocol against ``python run.py``: log in,
open an echo room, rtc.join, rtc.offer, and its own video comes back through the server."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.procs import start_server
from tests.web.ws.rtc_peer import WsPeer, WsSignal, wait_for

pytestmark = pytest.mark.slow


async def test_aiortc_client_over_the_real_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env={"CENTER_ALARM_CATCHUP_H": "0"})
    try:
        password = server.credentials()["users"]["street1"]["password"]
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            resp = await http.post(
                f"{server.url}/api/v1/auth/login",
                json={"username": "street1", "password": password},
            )
            assert resp.status == 200
            csrf = (await resp.json())["csrf_token"]
            resp = await http.post(
                f"{server.url}/api/v1/rooms", json={"kind": "echo"}, headers={"X-CSRF-Token": csrf}
            )
            assert resp.status == 201, await resp.text()
            room = await resp.json()
            sig = WsSignal(await http.ws_connect(f"{server.url}/ws"))
            assert (await sig.call("auth"))["success"]
            peer = WsPeer(sig, room["id"], base=7000)
            try:
                assert (await peer.join())["success"]
                await peer.connect()
                await wait_for(
                    lambda: (
                        (v := peer.video_from(peer.participant)) is not None and len(v.valid) > 15
                    )
                )
                await wait_for(lambda: peer.audio_frames() > 10)
            finally:
                await sig.close()
                await peer.close()
            metrics = await (await http.get(f"{server.url}/metrics")).text()
            assert "center_media_forwarding_fallback 0" in metrics
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "encoded forwarding self-test passed" in log
    assert "Traceback" not in log
