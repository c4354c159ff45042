"""Resolving the caller of a request: session cookie, API key or device token.

API keys and device tokens are looked up by SHA-256 and cached for a few seconds, so an
ingestion client sending thousands of requests a second costs one query per key per cache
period instead of one per request. Revocation therefore takes effect within
``_CACHE_TTL`` seconds.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from center.authz import Principal, PrincipalKind
from center.identity import resolve_credential, resolve_session, sha256_hex
from center.models import LoginSession, Role
from web import keys

SESSION_COOKIE = "center_session"
_CACHE_TTL = 10.0
_CACHE = web.AppKey("credential_cache", dict[str, tuple[float, Principal | None]])


def setup_principal_cache(app: web.Application) -> None:
    app[_CACHE] = {}


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


async def principal_from_secret(app: web.Application, secret: str) -> Principal | None:
    """An API key's or device token's principal (cached by the secret's hash)."""
    cache = app[_CACHE]
    clock = app[keys.CLOCK]
    digest = sha256_hex(secret)
    hit = cache.get(digest)
    now = clock.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    async with app[keys.SESSIONMAKER]() as session:
        cred = await resolve_credential(session, secret)
    principal: Principal | None = None
    if cred is not None:
        tree = app[keys.TREE]
        principal = Principal(
            kind=PrincipalKind.API_KEY if cred.kind == "api_key" else PrincipalKind.DEVICE,
            id=cred.id,
            name=cred.name,
            role=Role(cred.role),
            jurisdiction=tree.path(cred.jurisdiction_id),
        )
    if len(cache) > 10_000:
        cache.clear()
    cache[digest] = (now + _CACHE_TTL, principal)
    return principal


async def principal_from_session(
    app: web.Application, token: str
) -> tuple[Principal, LoginSession] | None:
    settings = app[keys.SETTINGS]
    async with app[keys.SESSIONMAKER]() as session:
        found = await resolve_session(
            session,
            token,
            now=app[keys.CLOCK].now(),
            ttl=timedelta(hours=settings.session_ttl_hours),
        )
    if found is None:
        return None
    user, row = found
    principal = Principal(
        kind=PrincipalKind.USER,
        id=str(user.id),
        name=user.username,
        role=Role(user.role),
        jurisdiction=app[keys.TREE].path(user.jurisdiction_id),
    )
    return principal, row
