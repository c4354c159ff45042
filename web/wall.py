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
from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from aiohttp import web

from center import audit
from center.authz import Action
from center.errors import InvalidCredentials, RateLimited, TooManyAttempts
from center.models import Role
from center.scope import visible_or_404
from center.wall_pairing import NAME_MAX, create_code, redeem_code
from web import keys
from web.api_auth import remote_of
from web.api_directory import PlaceId
from web.contract import contract
from web.fields import PLAIN, Text
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
        "code": code if code.isascii() and code.isdigit() else "",
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


class PairingCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, PLAIN, msgspec.Meta(max_length=NAME_MAX)] = "wall"
    jurisdiction: PlaceId | None = None  # default: the caller's own


class PairingCodeOut(msgspec.Struct):
    code: str
    expires_at: datetime
    url: str


@policy(Action.WALL_PAIR, auth=(SESSION,))
@contract(
    "Create a wall pairing code",
    body=PairingCodeIn,
    response=PairingCodeOut,
    status=201,
    errors=(404,),
    description="A one-time code for `/wall?code=`. The wall is scoped to `jurisdiction` "
    "(default: the caller's), which must lie inside the caller's own (else 404, as for an "
    "unknown one).",
)
async def create_pairing_code(request: web.Request, *, body: PairingCodeIn) -> PairingCodeOut:
    app = request.app
    principal = principal_of(request)
    jurisdiction = body.jurisdiction or (principal.jurisdiction or ("",))[-1]
    visible_or_404(principal, app[keys.TREE], Action.WALL_PAIR, jurisdiction, "jurisdiction")
    async with app[keys.SESSIONMAKER]() as session:
        code, expires = await create_code(
            session,
            name=body.name.strip(),
            jurisdiction_id=jurisdiction,
            actor=principal.actor,
            now=app[keys.CLOCK].now(),
            ttl=timedelta(seconds=app[keys.SETTINGS].wall_pairing_ttl_s),
        )
        await session.commit()
    return PairingCodeOut(code=code, expires_at=expires, url=f"/wall?code={code}")


class PairIn(msgspec.Struct):
    code: Text


class PairOut(msgspec.Struct):
    token: str


def _too_many(wait: float) -> RateLimited:
    return TooManyAttempts("too many wrong pairing codes; try again later", retry_after=wait)


@public
@contract(
    "Pair a wall screen",
    body=PairIn,
    response=PairOut,
    errors=(401, 429),
    description="Exchanges a pairing code for the wall's own device token, once; 401 "
    "`invalid_credentials` for an unknown, expired or used code; 429 `too_many_attempts` "
    "after repeated failures from one address.",
)
async def pair(request: web.Request, *, body: PairIn) -> PairOut:
    app = request.app
    throttle = app[keys.THROTTLE]
    who = ("wall-pair", "", remote_of(request))  # per address: codes have no username
    wait = await throttle.retry_after(*who)
    if wait > 0:
        raise _too_many(wait)
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        token = await redeem_code(session, body.code.strip(), remote=remote_of(request), now=now)
        if token is None:
            await session.rollback()
            locked = await throttle.failure(*who)
            if locked:
                raise _too_many(locked)
            raise InvalidCredentials("unknown, expired or already used pairing code")
        await audit.record(
            session,
            actor=f"pairing@{remote_of(request)}",
            action="wall.paired",
            target_type="wall",
            target_id="",
            at=now,
        )
        await session.commit()
    await throttle.success(*who)
    _LOGGER.info("a wall screen paired from %s", remote_of(request))
    return PairOut(token=token)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wall", wall_page)
    app.router.add_post("/api/v1/wall/pairing-codes", create_pairing_code)
    app.router.add_post("/api/v1/wall/pair", pair)
