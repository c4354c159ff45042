"""Server-rendered pages: login and the role-routed home page."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from center.models import User
from web import keys
from web.api_auth import home_for, me_payload
from web.context import LOGIN_SESSION, PRINCIPAL
from web.policy import authenticated_page, principal_of, public
from web.templating import render


def safe_next(raw: str) -> str:
    """``next`` if it is a path on this site, else ``""``: no scheme, no host, no
    protocol-relative ``//host`` or ``/\\host`` (browsers read a backslash as a slash), no
    control characters — a login link must not be a way to send an officer elsewhere."""
    if not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return ""
    if "\\" in raw or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return ""
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return ""
    return raw


@public
async def login_page(request: web.Request) -> web.Response:
    target = safe_next(request.query.get("next", ""))
    if request.get(PRINCIPAL) is not None and request.get(LOGIN_SESSION) is not None:
        raise web.HTTPFound(target or "/")
    return render(request, "login.html", next_url=target)


def work_page_for(app: web.Application, role: str) -> str | None:
    target = home_for(app, role)
    return None if target == "/" else target


@authenticated_page
async def home(request: web.Request) -> web.Response:
    """Routes each role to its page; until a role's page exists, a landing page in zh-CN."""
    info = me_payload(request)
    role = str(info["role"])
    target = work_page_for(request.app, role)
    if target and "stay" not in request.query:
        raise web.HTTPFound(target)
    jur = info["jurisdiction"]
    assert isinstance(jur, dict)
    row = request.get(LOGIN_SESSION)
    async with request.app[keys.SESSIONMAKER]() as session:
        user = await session.get(User, int(principal_of(request).id))
    return render(
        request,
        "home.html",
        role=role,
        display_name=user.display_name if user else principal_of(request).name,
        jurisdiction=jur.get("name", ""),
        csrf_token=row.csrf_token if row else "",
        work_page=target,
    )
