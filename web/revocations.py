"""Revocation on this instance, and the administrators' API for it.

:func:`apply` is what an instance does when a key, token, user or session is revoked: it
forgets the cached principal and closes, with 4001 ``revoked``, every open websocket that
authenticated with it. Revocations reach it three ways (see :mod:`center.revocation`): made
here (applied at once), announced on the bus by another instance, or read from the
``revocations`` table (the command line, or an instance whose bus is down).

The API (administrators only, as ``credentials.manage`` / ``users.manage``):

- ``GET /api/v1/keys`` lists keys and device tokens (never their secrets);
- ``DELETE /api/v1/keys/{id}`` revokes one (404 unknown; a second call answers the same
  record: revoking is idempotent);
- ``POST /api/v1/users/{id}/disable`` disables a user and ends their sessions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import select

from center.authz import Action, PrincipalKind
from center.bus import BusMessage
from center.errors import NotFound
from center.models import Credential, User
from center.revocation import RevocationFeed, Revoked, RevokedKind, disable_user, revoke_credential
from center.scope import visible_or_404
from center.topics import Event, Topic
from web import keys
from web.contract import contract
from web.fields import PG_INT_MAX, PLAIN
from web.policy import SESSION, policy, principal_of
from web.principals import forget_credential
from web.ws.errors import CLOSE_REVOKED
from web.ws.hub import hub_of

_LOGGER = logging.getLogger(__name__)
_FEED = web.AppKey("revocation_feed", RevocationFeed)


def apply(app: web.Application, revoked: Revoked) -> int:
    """Forget and disconnect what ``revoked`` names on this instance; returns the number of
    websockets closed."""
    if revoked.kind is RevokedKind.CREDENTIAL:
        forget_credential(app, revoked.target)
    closed = 0
    for conn in list(hub_of(app).connections):
        p = conn.principal
        if p is None:
            continue
        hit = (
            (
                revoked.kind is RevokedKind.CREDENTIAL
                and p.kind in (PrincipalKind.API_KEY, PrincipalKind.DEVICE)
                and p.id == revoked.target
            )
            or (
                revoked.kind is RevokedKind.USER
                and p.kind is PrincipalKind.USER
                and p.id == revoked.target
            )
            or (revoked.kind is RevokedKind.SESSION and conn.session_hash == revoked.target)
        )
        if hit:
            conn.logger.info("closing: its %s was revoked", revoked.kind)
            conn.drop(CLOSE_REVOKED, b"revoked")
            closed += 1
    return closed


async def announce(app: web.Application, revoked: Revoked) -> None:
    """After the revoking transaction committed: apply here, tell the other instances."""
    apply(app, revoked)
    try:
        await app[keys.BUS].publish(
            Topic.REVOCATIONS, Event.REVOKED, {"kind": str(revoked.kind), "target": revoked.target}
        )
    except Exception as exc:  # the table feed still carries it to the others
        _LOGGER.warning("revocation not announced on the bus (%s); instances poll for it", exc)


async def revocation_ctx(app: web.Application) -> AsyncIterator[None]:
    """The bus subscription and the table feed (after the bus and the tasks)."""

    def on_bus(msg: BusMessage) -> None:
        data = msg.data
        try:
            revoked = Revoked(RevokedKind(str(data.get("kind"))), str(data.get("target", "")))
        except ValueError:
            _LOGGER.warning("ignoring a malformed revocation message: %r", data)
            return
        apply(app, revoked)

    unsubscribe = app[keys.BUS].subscribe(Topic.REVOCATIONS, on_bus)
    feed = RevocationFeed(app[keys.SESSIONMAKER], lambda r: apply(app, r))
    await feed.start()
    app[_FEED] = feed
    app[keys.TASKS].spawn("revocation-feed", feed.run())
    try:
        yield
    finally:
        unsubscribe()


# -- the API ---------------------------------------------------------------------------


class KeyPath(msgspec.Struct):
    key_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)]


class UserPath(msgspec.Struct):
    user_id: Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)]


class KeyOut(msgspec.Struct):
    id: str
    kind: str
    name: str
    role: str
    jurisdiction: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyList(msgspec.Struct):
    items: list[KeyOut]


class UserOut(msgspec.Struct):
    id: str
    username: str
    role: str
    jurisdiction: str
    active: bool


def _key_out(cred: Credential) -> KeyOut:
    return KeyOut(
        id=cred.id,
        kind=cred.kind,
        name=cred.name,
        role=cred.role,
        jurisdiction=cred.jurisdiction_id,
        created_by=cred.created_by,
        created_at=cred.created_at,
        revoked_at=cred.revoked_at,
        last_used_at=cred.last_used_at,
    )


@policy(Action.CREDENTIALS_MANAGE, auth=(SESSION,))
@contract("API keys and device tokens", response=KeyList, description="Never the secrets.")
async def list_keys(request: web.Request) -> KeyList:
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = list(await session.scalars(select(Credential).order_by(Credential.created_at)))
    own = principal.jurisdiction
    return KeyList(
        items=[_key_out(c) for c in rows if tree.path(c.jurisdiction_id)[: len(own)] == own]
    )


@policy(Action.CREDENTIALS_MANAGE, auth=(SESSION,))
@contract(
    "Revoke an API key or device token",
    path=KeyPath,
    response=KeyOut,
    errors=(404,),
    description="Refused from the next request on every instance; its open websockets close "
    "with 4001 `revoked` within a second. Revoking a revoked key answers the same record.",
)
async def revoke_key(request: web.Request, *, path: KeyPath) -> KeyOut:
    app = request.app
    principal = principal_of(request)
    async with app[keys.SESSIONMAKER]() as session:
        cred = await session.get(Credential, path.key_id)
        if cred is None:
            raise NotFound("no such API key or device token")
        visible_or_404(
            principal, app[keys.TREE], Action.CREDENTIALS_MANAGE, cred.jurisdiction_id, "key"
        )
        cred, revoked = await revoke_credential(
            session, cred_id=cred.id, actor=principal.actor, now=app[keys.CLOCK].now()
        )
        out = _key_out(cred)
        await session.commit()
    if revoked is not None:
        await announce(app, revoked)
    return out


@policy(Action.USERS_MANAGE, auth=(SESSION,))
@contract(
    "Disable a user",
    path=UserPath,
    response=UserOut,
    errors=(404,),
    description="The user can no longer log in; every session ends at once and its open "
    "websockets close with 4001 `revoked`. Disabling a disabled user answers the same record.",
)
async def disable(request: web.Request, *, path: UserPath) -> UserOut:
    app = request.app
    principal = principal_of(request)
    async with app[keys.SESSIONMAKER]() as session:
        user = await session.get(User, path.user_id)
        if user is None:
            raise NotFound("no such user")
        visible_or_404(principal, app[keys.TREE], Action.USERS_MANAGE, user.jurisdiction_id, "user")
        revoked = await disable_user(
            session, user, actor=principal.actor, now=app[keys.CLOCK].now()
        )
        out = UserOut(
            id=str(user.id),
            username=user.username,
            role=user.role,
            jurisdiction=user.jurisdiction_id,
            active=user.active,
        )
        await session.commit()
    if revoked is not None:
        await announce(app, revoked)
    return out


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/keys", list_keys)
    app.router.add_delete("/api/v1/keys/{key_id}", revoke_key)
    app.router.add_post("/api/v1/users/{user_id}/disable", disable)
