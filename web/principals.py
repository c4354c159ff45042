"""Resolving the caller of a request: session cookie, API key or device token.

:func:`principal_view` is the one JSON form of a principal: the login answer, ``GET
/api/v1/me`` and the websocket ``auth`` result all carry it, so the id is a string in every
one of them (as :class:`~center.authz.Principal` holds it; key and device ids are not numbers).

API keys and device tokens are looked up by SHA-256 and cached for a few seconds, so an
ingestion client sending thousands of requests a second costs one query per key per cache
period instead of one per request; the same lookup stamps the credential's ``last_used_at``
(the admin page's "last seen"), one write per cache period. A revocation drops the cached
entry on every instance (:mod:`web.revocations`), so it takes effect on the next request,
not after the cache period.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Final

import msgspec
from aiohttp import web
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from center.authz import Principal, PrincipalKind, subject_grants
from center.identity import resolve_credential, resolve_session, sha256_hex
from center.models import Credential, LoginSession, Role
from center.visits.service import GUEST_TOKEN_PREFIX
from web import keys

_LOGGER = logging.getLogger(__name__)
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
    """An API key's, device token's or visit guest session's principal (cached by the
    secret's hash)."""
    cache = app[_CACHE]
    clock = app[keys.CLOCK]
    digest = sha256_hex(secret)
    hit = cache.get(digest)
    now = clock.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    principal: Principal | None = None
    if secret.startswith(GUEST_TOKEN_PREFIX):
        visits = app.get(keys.VISITS)
        principal = await visits.guest_principal(secret) if visits is not None else None
        cred = None
    else:
        async with app[keys.SESSIONMAKER]() as session:
            cred = await resolve_credential(session, secret)
            if cred is not None:  # "last seen" for the admin page, once per cache period
                try:
                    await session.execute(
                        update(Credential)
                        .where(Credential.id == cred.id)
                        .values(last_used_at=clock.now())
                    )
                    await session.commit()
                except SQLAlchemyError as exc:  # a busy database must not refuse the caller
                    _LOGGER.warning("last use of %s not recorded: %s", cred.id, exc)
                    await session.rollback()
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


def forget_credential(app: web.Application, cred_id: str) -> None:
    """Drop a revoked key's or token's cached principal: its next request is looked up (and
    refused) instead of being served from the cache."""
    cache = app[_CACHE]
    for digest in [d for d, (_, p) in cache.items() if p is not None and p.id == cred_id]:
        del cache[digest]


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
        display_name=user.display_name,
        grants=subject_grants(user.subject_id) if user.role == Role.SUBJECT else frozenset(),
    )
    return principal, row


HOME_BY_ROLE: Final[dict[str, str]] = {
    Role.ADMIN: "/admin",
    Role.DUTY: "/console",
    Role.DISTRICT: "/console",
    Role.STREET: "/console",
    Role.VISIT_STAFF: "/visits",
    Role.WALL: "/wall",
    Role.SUBJECT: "/s",
}


def home_for(app: web.Application, role: str) -> str:
    """The role's page if this build serves it, else the landing page ``/``."""
    target = HOME_BY_ROLE.get(role, "/")
    if target != "/" and any(r.canonical == target for r in app.router.resources()):
        return target
    return "/"


class UserView(msgspec.Struct):
    id: str
    username: str
    kind: PrincipalKind
    display_name: str


class PrincipalRef(msgspec.Struct):
    """The websocket's original short form (kept beside ``user``)."""

    kind: PrincipalKind
    name: str


class JurisdictionView(msgspec.Struct):
    id: str
    name: str
    level: str
    path: list[str]


class PrincipalView(msgspec.Struct):
    """Who the caller is: the common part of login, ``/api/v1/me`` and websocket ``auth``."""

    user: UserView
    principal: PrincipalRef
    role: Role
    jurisdiction: JurisdictionView
    home: str


def principal_view(app: web.Application, principal: Principal) -> PrincipalView:
    leaf = principal.jurisdiction[-1] if principal.jurisdiction else ""
    node = app[keys.TREE].get(leaf)
    return PrincipalView(
        user=UserView(
            id=principal.id,
            username=principal.name,
            kind=principal.kind,
            display_name=principal.display_name,
        ),
        principal=PrincipalRef(kind=principal.kind, name=principal.name),
        role=principal.role,
        jurisdiction=JurisdictionView(
            id=leaf,
            name=node.name if node else "",
            level=node.level if node else "",
            path=list(principal.jurisdiction),
        ),
        home=home_for(app, principal.role),
    )


def principal_fields(app: web.Application, principal: Principal) -> dict[str, Any]:
    """:func:`principal_view` as plain JSON values, for replies that add their own keys."""
    fields: dict[str, Any] = msgspec.to_builtins(principal_view(app, principal))
    return fields


def forget_grant(app: web.Application, grant: str) -> None:
    """Drop cached principals holding ``grant`` (a visit's guest sessions when it ends), so
    the next request or websocket auth is looked up — and refused — at once."""
    cache = app[_CACHE]
    for digest in [d for d, (_, p) in cache.items() if p is not None and grant in p.grants]:
        del cache[digest]
