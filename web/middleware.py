"""Middlewares: errors to the JSON envelope, request metrics, authentication + policy, CSRF."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import StaticResource

from center.authz import Principal, role_allowed
from center.errors import (
    CenterError,
    CsrfFailed,
    Forbidden,
    HttpError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    error_of,
)
from web import keys
from web.context import LOGIN_SESSION, PRINCIPAL
from web.forbidden import forbidden_page
from web.jsonio import error_response
from web.policy import API_KEY, DEVICE, GUEST, SESSION, get_policy
from web.principals import (
    SESSION_COOKIE,
    bearer_token,
    principal_from_secret,
    principal_from_session,
)

_LOGGER = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def _http_error(request: web.Request, exc: web.HTTPException) -> CenterError:
    """aiohttp's own 4xx/5xx (no route, wrong method, body too large) as a declared error."""
    if exc.status == 404:
        return NotFound("no such resource")
    if exc.status == 405:
        return MethodNotAllowed(f"method {request.method} is not allowed here")
    if exc.status == 413:
        return PayloadTooLarge("the request body is too large")
    return HttpError(exc.reason, status=exc.status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as the JSON envelope, through :func:`center.errors.error_of` (the same
    map the websocket uses): domain errors as declared, a bus outage 503, the rest 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not _wants_json(request) or exc.status < 400:
            raise
        return error_response(_http_error(request, exc))
    except Exception as exc:
        return error_response(error_of(exc, _LOGGER, f"{request.method} {request.path}"))


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        if isinstance(resource, StaticResource):
            route = resource.canonical + "/*"
        request.app[keys.METRICS].inc(
            "center_http_requests_total",
            "HTTP requests by route and status.",
            route=route,
            method=request.method,
            status=str(status),
        )


def _check_csrf(request: web.Request, csrf_token: str) -> None:
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent or not hmac.compare_digest(sent, csrf_token):
        raise CsrfFailed("missing or wrong CSRF token: send the X-CSRF-Token header from the page")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller and enforce the handler's declared policy (deny by default)."""
    route = request.match_info.route
    if isinstance(route.resource, StaticResource) or request.match_info.http_exception:
        return await handler(request)
    pol = get_policy(route.handler)
    if pol is None:
        _LOGGER.error("route %s has no access policy; refusing", route.resource)
        raise Forbidden("this endpoint has no access policy")
    principal: Principal | None = None
    token = bearer_token(request)
    if token is not None:
        principal = await principal_from_secret(request.app, token)
        if principal is None and pol.action is not None:
            raise Unauthorized("the API key or device token is unknown or revoked")
        if (
            principal is not None
            and pol.action is not None
            and (
                (principal.kind == "api_key" and API_KEY not in pol.auth)
                or (principal.kind == "device" and DEVICE not in pol.auth)
                or (principal.kind == "guest" and GUEST not in pol.auth)
            )
        ):
            raise Forbidden(f"this endpoint does not accept a {principal.kind.replace('_', ' ')}")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = await principal_from_session(request.app, cookie)
            if found is not None:
                principal, row = found
                request[LOGIN_SESSION] = row
                if pol.action is not None and SESSION not in pol.auth:
                    raise Forbidden("this endpoint needs an API key, not a login session")
                if request.method in _UNSAFE and pol.action is not None:
                    _check_csrf(request, row.csrf_token)
    if principal is not None:
        request[PRINCIPAL] = principal
    if pol.action is None:
        return await handler(request)
    if principal is None:
        if pol.page:
            raise web.HTTPFound(f"/login?next={request.rel_url}")
        raise Unauthorized("log in first (session cookie) or send an API key")
    if not role_allowed(principal, pol.action):
        if pol.page and principal.kind == "user":
            return forbidden_page(request, principal)
        raise Forbidden(
            f"role {principal.role} may not do {pol.action}", details={"action": pol.action}
        )
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def middlewares() -> list[Any]:
    return [metrics_middleware, error_middleware, security_headers, auth_middleware]
