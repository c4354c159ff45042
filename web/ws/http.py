"""``GET /ws``: the websocket endpoint — handshake, auth phase, then the command loop.

The route is public at the HTTP level because the protocol authenticates in its first
message: ``{"id": 1, "type": "auth", "token": "dt_…"}`` (a device token, API key or session
token), or ``{"id": 1, "type": "auth"}`` to use the session cookie sent with the handshake.
A cookie is only accepted from the page's own origin (no cross-site websocket hijacking).
Nothing but ``auth`` is served before it succeeds, and it must come within
``ws_auth_timeout_s``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

from aiohttp import WSMsgType, web

from center.authz import Principal
from center.errors import (
    AUTH_TIMEOUT,
    INVALID_FORMAT,
    UNAUTHORIZED,
    Forbidden,
    Unauthorized,
    error_of,
)
from center.visits.service import GUEST_TOKEN_PREFIX
from web import keys
from web.context import LOGIN_SESSION, PRINCIPAL
from web.policy import public
from web.principals import principal_fields, principal_from_secret, principal_from_session
from web.ws.commands import AuthIn
from web.ws.connection import Connection
from web.ws.errors import CLOSE_AUTH_FAILED
from web.ws.hub import Hub, hub_of
from web.ws.registry import fields_of


@public
async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """Public route; the protocol's ``auth`` message authenticates (see module docstring)."""
    app = request.app
    settings = app[keys.SETTINGS]
    hub = hub_of(app)
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat_s,
        max_msg_size=settings.ws_max_frame_bytes,
        compress=settings.ws_compress,
    )
    await ws.prepare(request)
    app[keys.WEBSOCKETS].add(ws)
    conn = Connection(ws, request, queue_max=settings.ws_send_queue, on_drop=hub.count_drop)
    hub.connections.add(conn)
    conn.logger.debug("connected from %s", request.remote)
    try:
        if await _auth_phase(hub, conn, settings.ws_auth_timeout_s):
            await _command_loop(hub, conn)
    finally:
        hub.connections.discard(conn)
        await conn.close()
        app[keys.WEBSOCKETS].discard(ws)
        conn.logger.debug("disconnected (%s sent, close code %s)", conn.sent, ws.close_code)
    return ws


async def _next_text(conn: Connection) -> str | None:
    """The next text frame; None once the socket is closing or broken."""
    while True:
        msg = await conn.ws.receive()
        if msg.type == WSMsgType.TEXT:
            return str(msg.data)
        if msg.type == WSMsgType.BINARY:
            conn.send_error(None, INVALID_FORMAT, "send text frames with JSON, not binary")
            continue
        if msg.type == WSMsgType.ERROR:
            conn.logger.info("websocket error: %s", conn.ws.exception())
        return None


async def _auth_phase(hub: Hub, conn: Connection, timeout: float) -> bool:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            while True:
                text = await _next_text(conn)
                if text is None:
                    return False
                msg = hub.envelope(conn, text)
                if msg is None:
                    continue
                if msg["type"] != "auth":
                    conn.send_error(
                        msg["id"], UNAUTHORIZED, 'authenticate first: {"id": 1, "type": "auth"}'
                    )
                    continue
                try:
                    principal = await _authenticate(conn, msg)
                except Exception as exc:
                    conn.send_failure(msg["id"], error_of(exc, conn.logger, "auth"))
                    await conn.close(CLOSE_AUTH_FAILED, b"authentication failed")
                    return False
                conn.authenticated(principal)
                conn.send_result(msg["id"], _auth_result(conn, principal))
                conn.logger.info("authenticated as %s", principal.actor)
                return True
    except TimeoutError:
        conn.send_error(None, AUTH_TIMEOUT, f"no auth message within {timeout:g} s")
        await conn.close(CLOSE_AUTH_FAILED, b"auth timeout")
        return False


async def _authenticate(conn: Connection, msg: dict[str, Any]) -> Principal:
    token = fields_of(msg, AuthIn, "auth").token
    request = conn.request
    if token:
        if token.startswith(("dt_", "ck_", GUEST_TOKEN_PREFIX)):
            principal = await principal_from_secret(conn.app, token)
        else:
            found = await principal_from_session(conn.app, token)
            principal = found[0] if found else None
            conn.session_hash = found[1].id if found else None
        if principal is None:
            raise Unauthorized("the token is unknown, revoked or expired")
        return principal
    principal = request.get(PRINCIPAL)
    row = request.get(LOGIN_SESSION)
    if principal is None or row is None:
        raise Unauthorized("send a token, or connect with a session cookie")
    conn.session_hash = row.id
    origin = request.headers.get("Origin")
    if origin and urlparse(origin).netloc != request.host:
        raise Forbidden("a session cookie is only accepted from the center's own pages")
    return principal


def _auth_result(conn: Connection, principal: Principal) -> dict[str, Any]:
    app = conn.app
    settings = app[keys.SETTINGS]
    hub = hub_of(app)
    return {
        **principal_fields(app, principal),
        "instance": app[keys.BUS].instance_id,
        "center_name": settings.center_name,
        "heartbeat_s": settings.ws_heartbeat_s,
        "max_frame_bytes": settings.ws_max_frame_bytes,
        "topics": hub.topics.names,
        "commands": hub.commands.types,
        "at": time.time(),
    }


async def _command_loop(hub: Hub, conn: Connection) -> None:
    while True:
        text = await _next_text(conn)
        if text is None:
            return
        await hub.dispatch(conn, text)
