"""The wall screen (大屏) page and its pairing API.

``GET /wall?token=dt_…`` opens a wall with a device token; ``GET /wall?code=123456`` makes the
page exchange a one-time pairing code for a token of its own (``POST /api/v1/wall/pair``);
``GET /wall`` uses the token the page stored before. There is no login prompt: the page
itself carries no data — everything arrives over ``/ws`` after the socket authenticates with
the token — so it is public, and a wrong token shows a clear "not paired" screen.

Staff (admin, duty) create codes with ``POST /api/v1/wall/pairing-codes``.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from aiohttp import web

from center import audit
from center.authz import authorize
from center.errors import (
    INVALID_CREDENTIALS,
    TOO_MANY_ATTEMPTS,
    BadRequest,
    CenterError,
    Forbidden,
    NotFound,
    RateLimited,
)
from center.models import Role
from center.wall_pairing import create_code, redeem_code
from web import keys
from web.api_auth import remote_of
from web.jsonio import json_response, read_object
from web.policy import SESSION, policy, principal_of, public
from web.principals import principal_from_secret
from web.templating import render, request_language

_LOGGER = logging.getLogger(__name__)


@public
async def wall_page(request: web.Request) -> web.Response:
    """Public: the page holds no data; the websocket authenticates (see module docstring)."""
    token = request.query.get("token", "")
    code = request.query.get("code", "")
    status = 200
    error = ""
    if token:
        principal = await principal_from_secret(request.app, token)
        if principal is None or principal.role != Role.WALL:
            status, error, token = 401, "unpaired", ""
    lang = request_language(request)
    config = {
        "token": token,
        "code": code if code.isdigit() else "",
        "error": error,
        "lang": lang,
        "geojson": "/static/vendor/shenzhen-geojson/shenzhen.geojson",
        "timezone": request.app[keys.SETTINGS].timezone,
    }
    response = render(
        request, "wall.html", wall_config=json.dumps(config, ensure_ascii=False), error=error
    )
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@policy("wall.pair", auth=(SESSION,))
async def create_pairing_code(request: web.Request) -> web.Response:
    """``POST /api/v1/wall/pairing-codes`` ``{"name", "jurisdiction"?}`` → 201 ``{"code",
    "expires_at", "url"}``. The wall is scoped to ``jurisdiction`` (default: the caller's),
    which must be inside the caller's own."""
    app = request.app
    principal = principal_of(request)
    body = await read_object(request)
    name = body.get("name", "wall")
    if not isinstance(name, str):
        raise BadRequest("'name' must be a string")
    tree = app[keys.TREE]
    jurisdiction = body.get("jurisdiction") or principal.jurisdiction[-1]
    if not isinstance(jurisdiction, str) or jurisdiction not in tree:
        raise NotFound(f"unknown jurisdiction {jurisdiction!r}")
    if not authorize(principal, "wall.pair", tree.path(jurisdiction)):
        raise Forbidden("the wall's jurisdiction must be inside your own")
    settings = app[keys.SETTINGS]
    async with app[keys.SESSIONMAKER]() as session:
        code, expires = await create_code(
            session,
            name=name.strip(),
            jurisdiction_id=jurisdiction,
            actor=principal.actor,
            now=app[keys.CLOCK].now(),
            ttl=timedelta(seconds=settings.wall_pairing_ttl_s),
        )
        await session.commit()
    return json_response(
        {"code": code, "expires_at": expires.isoformat(), "url": f"/wall?code={code}"},
        status=201,
    )


@public
async def pair(request: web.Request) -> web.Response:
    """``POST /api/v1/wall/pair`` ``{"code"}`` → ``{"token"}`` once; 401 for an unknown,
    expired or used code; 429 after repeated failures from one address."""
    app = request.app
    throttle = app[keys.THROTTLE]
    key = f"wall-pair:{remote_of(request)}"
    wait = throttle.retry_after(key)
    if wait > 0:
        raise RateLimited(
            "too many wrong pairing codes; try again later",
            retry_after=wait,
            code=TOO_MANY_ATTEMPTS,
        )
    body = await read_object(request)
    code = body.get("code")
    if not isinstance(code, str):
        raise BadRequest('send {"code": "123456"}')
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        token = await redeem_code(session, code.strip(), remote=remote_of(request), now=now)
        if token is None:
            await session.rollback()
            locked = throttle.failure(key)
            if locked:
                raise RateLimited(
                    "too many wrong pairing codes; try again later",
                    retry_after=locked,
                    code=TOO_MANY_ATTEMPTS,
                )
            raise CenterError(
                "unknown, expired or already used pairing code",
                code=INVALID_CREDENTIALS,
                status=401,
            )
        await audit.record(
            session,
            actor=f"pairing@{remote_of(request)}",
            action="wall.paired",
            target_type="wall",
            target_id="",
            at=now,
        )
        await session.commit()
    throttle.success(key)
    _LOGGER.info("a wall screen paired from %s", remote_of(request))
    return json_response({"token": token})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wall", wall_page)
    app.router.add_post("/api/v1/wall/pairing-codes", create_pairing_code)
    app.router.add_post("/api/v1/wall/pair", pair)
