"""Revocation takes effect at once: the next HTTP request is refused (cache or not), open
websockets close with 4001 ``revoked``, whether the revocation came from the admin API, the
command line (another process) or another instance; logout and disabling a user end their
sockets too."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.conftest import REDIS_URL, AppFactory, demo_credentials, login, need_redis
from tests.procs import ROOT
from web import keys
from web.ws.errors import CLOSE_REVOKED


async def _socket(client: TestClient, token: str | None = None) -> Any:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"id": 1, "type": "auth", **({"token": token} if token else {})})
    reply = await ws.receive_json(timeout=10)
    assert reply["success"], reply
    return ws


async def _closed_with_revoked(ws: Any) -> None:
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            break
    assert msg.type is WSMsgType.CLOSE, msg
    assert (msg.data, msg.extra) == (CLOSE_REVOKED, "revoked"), msg


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _key_id(client: TestClient, name: str) -> str:
    body = await (await client.get("/api/v1/keys")).json()
    return next(k["id"] for k in body["items"] if k["name"] == name and not k["revoked_at"])


async def test_api_revocation_refuses_at_once_and_closes_sockets(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    creds = demo_credentials(client)
    key, wall = creds["integration_key"], creds["wall_token"]
    assert (await client.get("/api/v1/me", headers=_bearer(key))).status == 200  # now cached
    wall_ws = await _socket(client, wall)
    csrf = await login(client, "admin")
    listed = await (await client.get("/api/v1/keys")).json()
    assert all("secret" not in k and "secret_hash" not in k for k in listed["items"])
    for name, secret in (("demo-simulator", key), ("demo-wall", wall)):
        kid = await _key_id(client, name)
        resp = await client.delete(f"/api/v1/keys/{kid}", headers={"X-CSRF-Token": csrf})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["revoked_at"]
        again = await client.delete(f"/api/v1/keys/{kid}", headers={"X-CSRF-Token": csrf})
        assert again.status == 200  # idempotent
        resp = await client.get("/api/v1/me", headers=_bearer(secret))
        assert resp.status == 401, (name, resp.status)
    await _closed_with_revoked(wall_ws)
    ws = await client.ws_connect("/ws")
    await ws.send_json({"id": 1, "type": "auth", "token": wall})
    assert (await ws.receive_json(timeout=10))["success"] is False
    resp = await client.delete("/api/v1/keys/nope", headers={"X-CSRF-Token": csrf})
    assert resp.status == 404
    # only administrators
    csrf = await login(client, "duty1")
    resp = await client.delete(f"/api/v1/keys/{kid}", headers={"X-CSRF-Token": csrf})
    assert resp.status == 403


async def test_logout_and_disable_close_the_users_sockets(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    await login(client, "duty2")
    session_token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
        "center_session"
    ].value
    by_cookie = await _socket(client)
    by_token = await _socket(client, session_token)
    csrf = (await (await client.get("/api/v1/me")).json())["csrf_token"]
    resp = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    await _closed_with_revoked(by_cookie)
    await _closed_with_revoked(by_token)
    # disabling a user ends every session of theirs, here and on the sockets
    await login(client, "street1")
    street_ws = await _socket(client)
    async with client.app[keys.SESSIONMAKER]() as session:
        from sqlalchemy import select

        from center.models import User

        uid = await session.scalar(select(User.id).where(User.username == "street1"))
    jar = client.session.cookie_jar
    jar.clear()
    csrf = await login(client, "admin")
    resp = await client.post(f"/api/v1/users/{uid}/disable", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200 and (await resp.json())["active"] is False
    await _closed_with_revoked(street_ws)
    password = demo_credentials(client)["users"]["street1"]["password"]
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "street1", "password": password}
    )
    assert resp.status == 401


async def test_command_line_revocation_reaches_a_running_instance(
    make_client: AppFactory, tmp_path: Any
) -> None:
    """``run.py revoke-key`` is another process with no bus: the instance reads it from the
    database and closes the token's socket."""
    client = await make_client(demo=True)
    creds = demo_credentials(client)
    wall_ws = await _socket(client, creds["wall_token"])
    settings = client.app[keys.SETTINGS]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "run.py"),
        "revoke-key",
        "--name",
        "demo-wall",
        "--data-dir",
        settings.data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin"},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    assert b"revoked device_token 'demo-wall'" in out
    await _closed_with_revoked(wall_ws)
    resp = await client.get("/api/v1/me", headers=_bearer(creds["wall_token"]))
    assert resp.status == 401
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "run.py"),
        "disable-user",
        "--username",
        "nobody",
        "--data-dir",
        settings.data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin"},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 2 and b"no user 'nobody'" in out


async def test_revocation_on_one_instance_reaches_the_other(
    make_client: AppFactory, database_url: str
) -> None:
    need_redis()
    common = {"redis_url": REDIS_URL, "redis_key_prefix": f"t{uuid.uuid4().hex[:8]}:"}
    a = await make_client(demo=True, database_url=database_url, **common)
    b = await make_client(demo=True, database_url=database_url, **common)
    key = demo_credentials(a)["integration_key"]
    assert (await b.get("/api/v1/me", headers=_bearer(key))).status == 200  # cached on B
    b_ws = await _socket(b, key)
    csrf = await login(a, "admin")
    kid = await _key_id(a, "demo-simulator")
    assert (await a.delete(f"/api/v1/keys/{kid}", headers={"X-CSRF-Token": csrf})).status == 200
    await _closed_with_revoked(b_ws)
    assert (await b.get("/api/v1/me", headers=_bearer(key))).status == 401


async def test_a_password_change_ends_every_session_and_socket(make_client: AppFactory) -> None:
    """A password changed elsewhere (the command line, the admin console) reaches the
    running instance through the revocations table."""
    from sqlalchemy import select

    from center.identity import set_password
    from center.models import User

    client = await make_client(demo=True)
    await login(client, "duty2")
    ws = await _socket(client)
    async with client.app[keys.SESSIONMAKER]() as session:
        user = await session.scalar(select(User).where(User.username == "duty2"))
        assert user is not None
        await set_password(
            session, user, "a-brand-new-password", actor="test", now=client.app[keys.CLOCK].now()
        )
        await session.commit()
    await _closed_with_revoked(ws)
    assert (await client.get("/api/v1/me")).status == 401
