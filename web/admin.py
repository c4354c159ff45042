"""The administrator's console (``/admin``) and its API: users and keys.

Users and keys are managed within the administrator's jurisdiction (a district administrator
sees and changes only that district's). Secrets — a new user's or a reset password, a new key
or token — are in the one response that creates them and never again. Every change is audited
with its before and after; a change of role or jurisdiction ends the user's sessions (their
open consoles close at once), as a password reset does, so no session keeps an old authority.
Disabling and revoking reuse :mod:`web.revocations`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import func, select

from center import audit
from center.authz import Action
from center.errors import NotFound, ValidationFailed
from center.identity import create_credential, create_user, new_password, set_password
from center.models import AuditEntry, CredentialKind, Role, SupervisionLevel, User
from center.revocation import Revoked, RevokedKind, end_user_sessions
from center.scope import visible_or_404
from web import keys
from web.context import LOGIN_SESSION
from web.contract import contract
from web.fields import NOT_BLANK, PLAIN
from web.policy import SESSION, policy, principal_of
from web.revocations import KeyOut, UserPath, _key_out, announce
from web.templating import render

STAFF_ROLES = (Role.ADMIN, Role.DUTY, Role.DISTRICT, Role.STREET, Role.VISIT_STAFF)
StaffRole = Annotated[str, msgspec.Meta(pattern="^(admin|duty|district|street|visit_staff)$")]
# no spaces and no control characters (center.identity.create_user's rule, said up front)
Username = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f-\x9f]+$")
]
DisplayName = Annotated[str, NOT_BLANK, msgspec.Meta(max_length=64)]
JurisdictionId = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]


class AdminUser(msgspec.Struct):
    id: int
    username: str
    display_name: str
    role: str
    jurisdiction: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class AdminUserList(msgspec.Struct):
    items: list[AdminUser]


class NewUserIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    role: StaffRole
    jurisdiction: JurisdictionId
    display_name: DisplayName | None = None


class UserChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    role: StaffRole | None = None
    jurisdiction: JurisdictionId | None = None
    display_name: DisplayName | None = None


class UserWithPassword(msgspec.Struct):
    user: AdminUser
    password: str


class NewKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, NOT_BLANK, msgspec.Meta(max_length=128)]
    kind: Annotated[str, msgspec.Meta(pattern="^(api_key|device_token)$")] = "api_key"
    jurisdiction: JurisdictionId | None = None


class KeyWithSecret(msgspec.Struct):
    key: KeyOut
    secret: str


async def _last_logins(session: Any) -> dict[str, datetime]:
    rows = await session.execute(
        select(AuditEntry.target_id, func.max(AuditEntry.at))
        .where(AuditEntry.action == "auth.login")
        .group_by(AuditEntry.target_id)
    )
    return {name: at for name, at in rows}


def _user_out(user: User, last_login: datetime | None) -> AdminUser:
    return AdminUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        jurisdiction=user.jurisdiction_id,
        active=user.active,
        created_at=user.created_at,
        last_login_at=last_login,
    )


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "jurisdiction": user.jurisdiction_id,
        "display_name": user.display_name,
        "active": user.active,
    }


def _place(request: web.Request, jurisdiction_id: str, what: str) -> None:
    visible_or_404(
        principal_of(request), request.app[keys.TREE], Action.USERS_MANAGE, jurisdiction_id, what
    )


async def _staff_user(session: Any, request: web.Request, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or user.role not in STAFF_ROLES:
        raise NotFound("no such user")
    _place(request, user.jurisdiction_id, "user")
    return user


@policy(Action.USERS_MANAGE, page=True)
async def admin_page(request: web.Request) -> web.Response:
    tree = request.app[keys.TREE]
    own = principal_of(request).jurisdiction
    places = [
        {"id": n.id, "name": n.name, "level": str(n.level)}
        for level in ("city", "district", "street")
        for n in tree.by_level(level)
        if tree.path(n.id)[: len(own)] == own
    ]
    boot = {
        "jurisdictions": places,
        "roles": [str(r) for r in STAFF_ROLES],
        "levels": [str(v) for v in SupervisionLevel],
    }
    row = request.get(LOGIN_SESSION)
    return render(
        request,
        "admin.html",
        csrf_token=row.csrf_token if row else "",
        boot_json=json.dumps(boot, ensure_ascii=False).replace("</", "<\\/"),
    )


@policy(Action.USERS_MANAGE, auth=(SESSION,))
@contract("Staff users", response=AdminUserList, description="With their last login.")
async def list_users(request: web.Request) -> AdminUserList:
    tree = request.app[keys.TREE]
    own = principal_of(request).jurisdiction
    async with request.app[keys.SESSIONMAKER]() as session:
        users = list(await session.scalars(select(User).order_by(User.username)))
        last = await _last_logins(session)
    return AdminUserList(
        items=[
            _user_out(u, last.get(u.username))
            for u in users
            if u.role in STAFF_ROLES
            and u.jurisdiction_id in tree
            and tree.path(u.jurisdiction_id)[: len(own)] == own
        ]
    )


@policy(Action.USERS_MANAGE, auth=(SESSION,))
@contract(
    "Create a staff user",
    body=NewUserIn,
    response=UserWithPassword,
    status=201,
    errors=(404, 422),
    description="The generated password is in this response only.",
)
async def create_staff_user(request: web.Request, *, body: NewUserIn) -> UserWithPassword:
    _place(request, body.jurisdiction, "jurisdiction")
    password = new_password()
    async with request.app[keys.SESSIONMAKER]() as session:
        user = await create_user(
            session,
            username=body.username,
            password=password,
            role=Role(body.role),
            jurisdiction_id=body.jurisdiction,
            display_name=body.display_name or body.username,
            actor=principal_of(request).actor,
            now=request.app[keys.CLOCK].now(),
        )
        out = _user_out(user, None)
        await session.commit()
    return UserWithPassword(user=out, password=password)


@policy(Action.USERS_MANAGE, auth=(SESSION,))
@contract(
    "Change a user's role, jurisdiction or name",
    path=UserPath,
    body=UserChangeIn,
    response=AdminUser,
    errors=(404, 422),
    description="A new role or jurisdiction ends the user's sessions at once.",
)
async def change_user(request: web.Request, *, path: UserPath, body: UserChangeIn) -> AdminUser:
    app = request.app
    principal = principal_of(request)
    now = app[keys.CLOCK].now()
    revoked = None
    async with app[keys.SESSIONMAKER]() as session:
        user = await _staff_user(session, request, path.user_id)
        if body.jurisdiction is not None:
            _place(request, body.jurisdiction, "jurisdiction")
        if user.username == principal.name and body.role not in (None, user.role):
            raise ValidationFailed.of({"role": "cannot be changed on your own account"})
        before = _snapshot(user)
        if body.role is not None:
            user.role = body.role
        if body.jurisdiction is not None:
            user.jurisdiction_id = body.jurisdiction
        if body.display_name is not None:
            user.display_name = body.display_name
        after = _snapshot(user)
        if after != before:
            user.updated_at = now
            if (before["role"], before["jurisdiction"]) != (after["role"], after["jurisdiction"]):
                revoked = await end_user_sessions(session, user, now)
            await audit.record(
                session,
                actor=principal.actor,
                action="user.update",
                target_type="user",
                target_id=user.username,
                details={"before": before, "after": after},
                at=now,
            )
        last = (await _last_logins(session)).get(user.username)
        out = _user_out(user, last)
        await session.commit()
    if revoked is not None:
        await announce(app, revoked)
    return out


@policy(Action.USERS_MANAGE, auth=(SESSION,))
@contract(
    "Reset a user's password",
    path=UserPath,
    response=UserWithPassword,
    errors=(404,),
    description="A new generated password, in this response only; every session of the user "
    "ends at once.",
)
async def reset_password(request: web.Request, *, path: UserPath) -> UserWithPassword:
    app = request.app
    password = new_password()
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        user = await _staff_user(session, request, path.user_id)
        # set_password ends every session (and notes it for the other instances)
        await set_password(session, user, password, actor=principal_of(request).actor, now=now)
        revoked = Revoked(RevokedKind.USER, str(user.id))
        out = _user_out(user, (await _last_logins(session)).get(user.username))
        await session.commit()
    await announce(app, revoked)
    return UserWithPassword(user=out, password=password)


@policy(Action.CREDENTIALS_MANAGE, auth=(SESSION,))
@contract(
    "Create an API key or device token",
    body=NewKeyIn,
    response=KeyWithSecret,
    status=201,
    errors=(404, 422),
    description="The secret is in this response only. Jurisdiction: default the "
    "administrator's own.",
)
async def create_key(request: web.Request, *, body: NewKeyIn) -> KeyWithSecret:
    app = request.app
    principal = principal_of(request)
    jurisdiction = body.jurisdiction or principal.jurisdiction[-1]
    visible_or_404(principal, app[keys.TREE], Action.CREDENTIALS_MANAGE, jurisdiction, "place")
    kind = CredentialKind.DEVICE_TOKEN if body.kind == "device_token" else CredentialKind.API_KEY
    async with app[keys.SESSIONMAKER]() as session:
        cred, secret = await create_credential(
            session,
            kind=kind,
            name=body.name,
            jurisdiction_id=jurisdiction,
            actor=principal.actor,
            now=app[keys.CLOCK].now(),
        )
        out = _key_out(cred)
        await session.commit()
    return KeyWithSecret(key=out, secret=secret)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", admin_page)
    r.add_get("/api/v1/admin/users", list_users)
    r.add_post("/api/v1/admin/users", create_staff_user)
    r.add_patch("/api/v1/admin/users/{user_id}", change_user)
    r.add_post("/api/v1/admin/users/{user_id}/password", reset_password)
    r.add_post("/api/v1/keys", create_key)
