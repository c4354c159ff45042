"""Typed per-request keys set by the middlewares."""

from __future__ import annotations

from aiohttp import web

from center.authz import Principal
from center.models import LoginSession

PRINCIPAL = web.RequestKey("principal", Principal)
LOGIN_SESSION = web.RequestKey("login_session", LoginSession)
