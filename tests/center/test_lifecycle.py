"""The server as an operator runs it: demo seeding, credentials file, graceful SIGTERM."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.procs import start_server


def _post_json(url: str, body: dict[str, str]) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@pytest.mark.slow
def test_demo_start_credentials_and_idempotent_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        creds = server.credentials()
        assert set(creds) >= {"users", "integration_key", "wall_token"}
        roles = {info["role"] for info in creds["users"].values()}
        assert {"admin", "duty", "district", "street", "visit_staff"} <= roles
        assert sum(1 for i in creds["users"].values() if i["role"] == "duty") >= 2
        assert creds["integration_key"].startswith("ck_") and creds["wall_token"].startswith("dt_")
        for name, info in creds["users"].items():
            assert (
                _post_json(
                    f"{server.url}/api/v1/auth/login",
                    {"username": name, "password": info["password"]},
                )
                == 200
            )
        with urllib.request.urlopen(f"{server.url}/login", timeout=10) as resp:
            assert "登录" in resp.read().decode()
        assert "duty1" in server.log() and creds["users"]["duty1"]["password"] in server.log()
    finally:
        assert server.stop() == 0
    # Same data directory: same passwords, no second copy of the city.
    again = start_server(tmp_path / "data")
    try:
        assert again.credentials()["users"] == creds["users"]
        assert (
            _post_json(
                f"{again.url}/api/v1/auth/login",
                {"username": "duty1", "password": creds["users"]["duty1"]["password"]},
            )
            == 200
        )
    finally:
        assert again.stop() == 0
    assert "demo city seeded" not in again.log()


@pytest.mark.slow
def test_no_default_accounts_outside_demo(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", args=())
    try:
        assert not (tmp_path / "data" / "demo-credentials.json").exists()
        assert (
            _post_json(
                f"{server.url}/api/v1/auth/login", {"username": "admin", "password": "admin"}
            )
            == 401
        )
    finally:
        server.stop()


@pytest.mark.slow
async def test_sigterm_closes_websockets_and_leaves_no_task(tmp_path: Path) -> None:
    """SIGTERM closes every open websocket with 1001 GOING_AWAY before the process exits."""
    server = start_server(tmp_path / "data")
    try:
        async with aiohttp.ClientSession() as http:
            token = server.credentials()["wall_token"]
            async with http.ws_connect(f"{server.url}/ws") as ws:
                await ws.send_json({"id": 1, "type": "auth", "token": token})
                reply = await ws.receive_json(timeout=10)
                assert reply["id"] == 1 and reply["type"] == "result" and reply["success"], reply
                server.signal_once(signal.SIGTERM)
                msg = await ws.receive(timeout=20)
                while msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    msg = await ws.receive(timeout=20)  # events sent before the close
                assert msg.type == aiohttp.WSMsgType.CLOSE, msg
                assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    finally:
        code = server.stop()
    assert code == 0
    log = server.log()
    assert "shutdown complete: no background task left running" in log
    assert "Traceback" not in log
