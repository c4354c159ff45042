"""Login, logout and "who am I"."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from center import audit
from center.errors import (
    INVALID_CREDENTIALS,
    TOO_MANY_ATTEMPTS,
    BadRequest,
    CenterError,
    RateLimited,
)
from center.identity import authenticate, create_session, delete_session
from web import keys
from web.context import LOGIN_SESSION
from web.jsonio import json_response, read_object
from web.policy import SESSION, policy, principal_of, public
from web.principals import SESSION_COOKIE

_LOGGER = logging.getLogger(__name__)

HOME_BY_ROLE = {
    "admin": "/",
    "duty": "/console",
    "district": "/console",
    "street": "/console",
    "visit_staff": "/visits",
    "wall": "/wall",
}


def home_for(app: web.Application, role: str) -> str:
    """The role's page if this build serves it, else the landing page ``/``."""
    target = HOME_BY_ROLE.get(role, "/")
    if target != "/" and any(r.canonical == target for r in app.router.resources()):
        return target
    return "/"


def remote_of(request: web.Request) -> str:
    return request.remote or ""


@public
async def login(request: web.Request) -> web.Response:
    """``POST /api/v1/auth/login``: 200 + session cookie, 401 on wrong credentials, 429 when
    the user or address is locked out after repeated failures."""
    app = request.app
    body = await read_object(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise BadRequest('send {"username": ..., "password": ...} as strings')
    username = username.strip()
    throttle = app[keys.THROTTLE]
    throttle_keys = (f"user:{username.lower()}", f"addr:{remote_of(request)}")
    wait = throttle.retry_after(*throttle_keys)
    if wait > 0:
        raise RateLimited(
            "too many failed logins; try again later", retry_after=wait, code=TOO_MANY_ATTEMPTS
        )
    clock = app[keys.CLOCK]
    settings = app[keys.SETTINGS]
    async with app[keys.SESSIONMAKER]() as session:
        user = await authenticate(session, username, password)
        now = clock.now()
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
                raise RateLimited(
                    "too many failed logins; try again later",
                    retry_after=locked,
                    code=TOO_MANY_ATTEMPTS,
                )
            raise CenterError("wrong username or password", code=INVALID_CREDENTIALS, status=401)
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
        tree = app[keys.TREE]
        node = tree.get(user.jurisdiction_id)
        response = json_response(
            {
                "user": {
                    "id": user.id,
                    "username": user.username,
                    "display_name": user.display_name,
                },
                "role": user.role,
                "jurisdiction": {
                    "id": user.jurisdiction_id,
                    "name": node.name if node else "",
                    "level": node.level if node else "",
                },
                "csrf_token": new.csrf_token,
                "home": home_for(app, user.role),
                "expires_at": new.expires_at.isoformat(),
            }
        )
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=settings.secure_cookies,
    )
    return response


@policy("me.read", auth=(SESSION,))
async def logout(request: web.Request) -> web.Response:
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
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def me_payload(request: web.Request) -> dict[str, object]:
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    jid = principal.jurisdiction[-1] if principal.jurisdiction else ""
    node = tree.get(jid)
    payload: dict[str, object] = {
        "user": {"id": principal.id, "username": principal.name, "kind": str(principal.kind)},
        "role": str(principal.role),
        "jurisdiction": {
            "id": jid,
            "name": node.name if node else "",
            "level": node.level if node else "",
            "path": list(principal.jurisdiction),
        },
        "home": home_for(request.app, principal.role),
    }
    row = request.get(LOGIN_SESSION)
    if row is not None:
        payload["csrf_token"] = row.csrf_token
    return payload


@policy("me.read", auth=("session", "api_key", "device"))
async def me(request: web.Request) -> web.Response:
    """``GET /api/v1/me``: user, role, jurisdiction (and the page's CSRF token)."""
    return json_response(me_payload(request))
