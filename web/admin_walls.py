"""Wall screens for the administrator: pending pairing codes, paired screens, unpairing.

A paired wall is a device token of role ``wall`` (made by redeeming a pairing code,
:mod:`center.wall_pairing`, or created on the keys tab). ``GET /api/v1/admin/walls`` lists
the paired screens in the administrator's jurisdiction with when each was last seen (its
token's last authentication, :func:`web.principals.principal_from_secret`) and whether it
holds a websocket on this instance, and the pairing codes still waiting for a screen (never
the codes themselves: only their hash is stored, the code is shown once at creation by
``POST /api/v1/wall/pairing-codes``). ``DELETE /api/v1/admin/walls/{wall_id}`` unpairs: it
revokes the token through :mod:`center.revocation`, so the wall's socket closes with 4001
``revoked`` at once on every instance, and audits ``wall.unpair`` with before and after.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import select

from center import audit
from center.authz import Action, PrincipalKind, authorize
from center.errors import NotFound
from center.models import Credential, CredentialKind, Role
from center.revocation import revoke_credential
from center.wall_pairing import WallPairingCode
from web import keys
from web.contract import contract
from web.fields import PLAIN
from web.policy import SESSION, policy, principal_of
from web.revocations import announce
from web.ws.hub import hub_of


class WallPath(msgspec.Struct):
    wall_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)]


class WallOut(msgspec.Struct):
    id: str
    name: str
    jurisdiction: str
    paired_at: datetime
    paired_by: str
    last_seen_at: datetime | None
    online: bool  # holds a websocket on this instance
    revoked_at: datetime | None


class PendingCode(msgspec.Struct):
    name: str
    jurisdiction: str
    created_by: str
    created_at: datetime
    expires_at: datetime


class WallList(msgspec.Struct):
    items: list[WallOut]
    pending: list[PendingCode]


def _online(app: web.Application) -> set[str]:
    return {
        c.principal.id
        for c in hub_of(app).connections
        if c.principal is not None and c.principal.kind is PrincipalKind.DEVICE
    }


def _wall_out(cred: Credential, code: WallPairingCode | None, online: set[str]) -> WallOut:
    return WallOut(
        id=cred.id,
        name=cred.name.removeprefix("wall:"),
        jurisdiction=cred.jurisdiction_id,
        paired_at=cred.created_at,
        paired_by=code.created_by if code is not None else cred.created_by,
        last_seen_at=cred.last_used_at,
        online=cred.revoked_at is None and cred.id in online,
        revoked_at=cred.revoked_at,
    )


def _in_scope(request: web.Request, jurisdiction_id: str) -> bool:
    tree = request.app[keys.TREE]
    return jurisdiction_id in tree and authorize(
        principal_of(request), Action.CREDENTIALS_MANAGE, tree.path(jurisdiction_id)
    )


@policy(Action.CREDENTIALS_MANAGE, auth=(SESSION,))
@contract(
    "Wall screens: paired screens and pending pairing codes",
    response=WallList,
    description="Screens in the caller's jurisdiction, newest first, with the last time each "
    "token authenticated; pending codes are listed without the code (shown once only).",
)
async def list_walls(request: web.Request) -> WallList:
    app = request.app
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        creds = list(
            await session.scalars(
                select(Credential)
                .where(
                    Credential.kind == str(CredentialKind.DEVICE_TOKEN),
                    Credential.role == str(Role.WALL),
                )
                .order_by(Credential.created_at.desc())
            )
        )
        codes = list(await session.scalars(select(WallPairingCode)))
    by_cred = {c.credential_id: c for c in codes if c.credential_id}
    online = _online(app)
    items = [
        _wall_out(c, by_cred.get(c.id), online)
        for c in creds
        if _in_scope(request, c.jurisdiction_id)
    ]
    pending = [
        PendingCode(c.name, c.jurisdiction_id, c.created_by, c.created_at, c.expires_at)
        for c in sorted(codes, key=lambda c: c.created_at, reverse=True)
        if c.used_at is None and c.expires_at > now and _in_scope(request, c.jurisdiction_id)
    ]
    return WallList(items=items, pending=pending)


@policy(Action.CREDENTIALS_MANAGE, auth=(SESSION,))
@contract(
    "Unpair a wall screen",
    path=WallPath,
    response=WallOut,
    errors=(404,),
    description="Revokes the screen's token: its websocket closes with 4001 `revoked` at once "
    'on every instance and the page shows "not paired". Audited `wall.unpair` with before '
    "and after; unpairing an unpaired screen answers the same record.",
)
async def unpair(request: web.Request, *, path: WallPath) -> WallOut:
    app = request.app
    principal = principal_of(request)
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        cred = await session.get(Credential, path.wall_id)
        if cred is None or cred.role != Role.WALL or not _in_scope(request, cred.jurisdiction_id):
            raise NotFound("no such wall screen in your jurisdiction")
        before = {"paired": cred.revoked_at is None, "name": cred.name}
        cred, revoked = await revoke_credential(
            session, cred_id=cred.id, actor=principal.actor, now=now
        )
        if revoked is not None:
            await audit.record(
                session,
                actor=principal.actor,
                action="wall.unpair",
                target_type="wall",
                target_id=cred.id,
                details={"before": before, "after": {"paired": False, "name": cred.name}},
                at=now,
            )
        code = await session.scalar(
            select(WallPairingCode).where(WallPairingCode.credential_id == cred.id)
        )
        await session.commit()
    if revoked is not None:
        await announce(app, revoked)
    return _wall_out(cred, code, _online(app))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/walls", list_walls)
    app.router.add_delete("/api/v1/admin/walls/{wall_id}", unpair)
