"""Login, logout and "who am I".

All three answer with the one principal form of :func:`web.principals.principal_view` (the
websocket ``auth`` result carries it too), so a page reads the same ``user``, ``role`` and
``jurisdiction`` wherever it got them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any, Final

import msgspec
from aiohttp import web

from center import audit
from center.authz import Action, Principal, PrincipalKind
from center.errors import InvalidCredentials, RateLimited, TooManyAttempts
from center.identity import authenticate, create_session, sha256_hex
from center.models import Role, User
from center.revocation import end_session
from web import keys, revocations
from web.context import LOGIN_SESSION
from web.contract import contract, respond
from web.fields import Text, column_length
from web.policy import API_KEY, DEVICE, GUEST, SESSION, policy, principal_of, public
from web.principals import SESSION_COOKIE, PrincipalView, principal_fields, principal_view
from web.principals import home_for as home_for  # re-exported for the page handlers

_LOGGER = logging.getLogger(__name__)


MAX_USERNAME: Final = column_length(User.username)


class LoginIn(msgspec.Struct):
    """Unknown fields are ignored: login is not a staff action whose meaning a typo changes."""

    username: Annotated[Text, msgspec.Meta(min_length=1, max_length=MAX_USERNAME)]
    password: Annotated[Text, msgspec.Meta(max_length=1024)]


class LoginOut(PrincipalView):
    csrf_token: str
    expires_at: datetime


class MeOut(PrincipalView):
    csrf_token: str | msgspec.UnsetType = msgspec.UNSET  # only for a session (pages)


class LoggedOut(msgspec.Struct):
    ok: bool = True


def remote_of(request: web.Request) -> str:
    """The client's address: the TCP peer, or — when the peer is a trusted reverse proxy
    (``trusted_proxies``) — the right-most address of ``X-Forwarded-For`` that is not itself
    a trusted proxy (the left part is whatever the client wrote)."""
    peer = request.remote or ""
    networks = request.app[keys.SETTINGS].proxy_networks
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, networks):
            return hop[:64] if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _too_many(wait: float) -> RateLimited:
    return TooManyAttempts("too many failed logins; try again later", retry_after=wait)


@public
@contract(
    "Log in",
    body=LoginIn,
    response=LoginOut,
    errors=(401, 429),
    description="200 with the session cookie; 401 `invalid_credentials` for a wrong username "
    "or password (`details.attempts_left`: failures left before this username is locked "
    "out from this address); 429 `too_many_attempts` with `Retry-After` while this username is locked "
    "out from this address (or the address from every username) after repeated failures. A "
    "correct password from an address that has not failed is never refused.",
)
async def login(request: web.Request, *, body: LoginIn) -> web.StreamResponse:
    app = request.app
    username = body.username.strip()
    throttle = app[keys.THROTTLE]
    who = ("login", username, remote_of(request))
    wait = await throttle.retry_after(*who)
    if wait > 0:
        raise _too_many(wait)
    settings = app[keys.SETTINGS]
    async with app[keys.SESSIONMAKER]() as session:
        user = await authenticate(session, username, body.password)
        now = app[keys.CLOCK].now()
        if user is None:
            locked = await throttle.failure(*who)
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
                details={"attempts_left": await throttle.attempts_left(*who)},
            )
        await throttle.success(*who)
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
        # the session's open websockets close too (a socket opened before logout must not
        # outlive it)
        revoked = await end_session(session, sha256_hex(token), app[keys.CLOCK].now())
        await audit.record(
            session,
            actor=principal.actor,
            action="auth.logout",
            target_type="user",
            target_id=principal.name,
            at=app[keys.CLOCK].now(),
        )
        await session.commit()
    await revocations.announce(app, revoked)
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


@policy(Action.ME_READ, auth=(SESSION, API_KEY, DEVICE, GUEST))
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
