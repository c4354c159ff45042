"""Login, logout and "who am I".

All three answer with the one principal form of :func:`web.principals.principal_view` (the
websocket ``auth`` result carries it too), so a page reads the same ``user``, ``role`` and
``jurisdiction`` wherever it got them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from aiohttp import web

from center import audit
from center.authz import Action, Principal, PrincipalKind
from center.errors import InvalidCredentials, RateLimited, TooManyAttempts
from center.identity import authenticate, create_session, delete_session
from center.models import Role
from web import keys
from web.context import LOGIN_SESSION
from web.contract import contract, respond
from web.fields import Text
from web.policy import API_KEY, DEVICE, SESSION, policy, principal_of, public
from web.principals import SESSION_COOKIE, PrincipalView, principal_fields, principal_view
from web.principals import home_for as home_for  # re-exported for the page handlers

_LOGGER = logging.getLogger(__name__)


class LoginIn(msgspec.Struct):
    """Unknown fields are ignored: login is not a staff action whose meaning a typo changes."""

    username: Annotated[Text, msgspec.Meta(min_length=1)]
    password: Text


class LoginOut(PrincipalView):
    csrf_token: str
    expires_at: datetime


class MeOut(PrincipalView):
    csrf_token: str | msgspec.UnsetType = msgspec.UNSET  # only for a session (pages)


class LoggedOut(msgspec.Struct):
    ok: bool = True


def remote_of(request: web.Request) -> str:
    return request.remote or ""


def _too_many(wait: float) -> RateLimited:
    return TooManyAttempts("too many failed logins; try again later", retry_after=wait)


@public
@contract(
    "Log in",
    body=LoginIn,
    response=LoginOut,
    errors=(401, 429),
    description="200 with the session cookie; 401 `invalid_credentials` for a wrong username "
    "or password (`details.attempts_left`: failures left before a lockout); 429 `too_many_attempts` with `Retry-After` while the user or the address "
    "is locked out after repeated failures.",
)
async def login(request: web.Request, *, body: LoginIn) -> web.StreamResponse:
    app = request.app
    username = body.username.strip()
    throttle = app[keys.THROTTLE]
    throttle_keys = (f"user:{username.lower()}", f"addr:{remote_of(request)}")
    wait = throttle.retry_after(*throttle_keys)
    if wait > 0:
        raise _too_many(wait)
    settings = app[keys.SETTINGS]
    async with app[keys.SESSIONMAKER]() as session:
        user = await authenticate(session, username, body.password)
        now = app[keys.CLOCK].now()
        if user is None:
            locked = throttle.failure(*throttle_keys)
            await audit.record(
                session,
                actor=f"anonymous@{remote_of(request)}",
                action="auth.login_failed",
                target_type="user",
                target_id=username[:64],
                details={"locked_for_s": locked} if locked else None,
                at=now,
            )
            await session.commit()
            if locked:
                raise _too_many(locked)
            raise InvalidCredentials(
                "wrong username or password",
                details={"attempts_left": throttle.attempts_left(*throttle_keys)},
            )
        throttle.success(*throttle_keys)
        new = await create_session(
            session,
            user,
            now=now,
            ttl=timedelta(hours=settings.session_ttl_hours),
            remote=remote_of(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        await audit.record(
            session,
            actor=f"user:{user.username}",
            action="auth.login",
            target_type="user",
            target_id=user.username,
            details={"remote": remote_of(request)},
            at=now,
        )
        await session.commit()
    principal = Principal(
        kind=PrincipalKind.USER,
        id=str(user.id),
        name=user.username,
        role=Role(user.role),
        jurisdiction=app[keys.TREE].path(user.jurisdiction_id),
        display_name=user.display_name,
    )
    view = principal_view(app, principal)
    out = LoginOut(
        **msgspec.structs.asdict(view), csrf_token=new.csrf_token, expires_at=new.expires_at
    )
    response = respond(out)
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=settings.secure_cookies,
    )
    return response


@policy(Action.ME_READ, auth=(SESSION,))
@contract("Log out", response=LoggedOut, description="Ends the session and clears its cookie.")
async def logout(request: web.Request) -> web.StreamResponse:
    app = request.app
    token = request.cookies.get(SESSION_COOKIE, "")
    principal = principal_of(request)
    async with app[keys.SESSIONMAKER]() as session:
        await delete_session(session, token)
        await audit.record(
            session,
            actor=principal.actor,
            action="auth.logout",
            target_type="user",
            target_id=principal.name,
            at=app[keys.CLOCK].now(),
        )
        await session.commit()
    response = respond(LoggedOut())
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def me_payload(request: web.Request) -> dict[str, Any]:
    """``GET /api/v1/me`` as plain JSON values (the pages embed it in their boot data)."""
    payload = principal_fields(request.app, principal_of(request))
    row = request.get(LOGIN_SESSION)
    if row is not None:
        payload["csrf_token"] = row.csrf_token
    return payload


@policy(Action.ME_READ, auth=(SESSION, API_KEY, DEVICE))
@contract(
    "Who am I",
    response=MeOut,
    description="User, role, jurisdiction and home page of the caller; with a session also "
    "the CSRF token the page sends as `X-CSRF-Token` on state changes.",
)
async def me(request: web.Request) -> MeOut:
    view = principal_view(request.app, principal_of(request))
    row = request.get(LOGIN_SESSION)
    if row is None:
        return MeOut(**msgspec.structs.asdict(view))
    return MeOut(**msgspec.structs.asdict(view), csrf_token=row.csrf_token)
