"""Staff users, login sessions, API keys and device tokens.

Secrets (session tokens, API keys, device tokens) are random and shown once; the database
keeps their SHA-256 only, so a leaked database does not leak working credentials.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from center import audit
from center.errors import ValidationFailed
from center.models import Credential, CredentialKind, LoginSession, Role, User
from center.passwords import hash_password, needs_rehash, verify_password
from center.revocation import end_user_sessions

API_KEY_PREFIX = "ck_"
DEVICE_TOKEN_PREFIX = "dt_"
# Sliding sessions: refresh last_seen at most this often, so reads stay reads.
_TOUCH_EVERY = timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 10


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_password(length: int = 16) -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: Role,
    jurisdiction_id: str,
    display_name: str = "",
    actor: str,
    now: datetime,
) -> User:
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise ValidationFailed("username must be 1–64 printable characters without spaces")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    exists = await session.scalar(select(User.id).where(User.username == username))
    if exists is not None:
        raise ValidationFailed(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=str(role),
        jurisdiction_id=jurisdiction_id,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=username,
        details={"role": str(role), "jurisdiction": jurisdiction_id},
        at=now,
    )
    return user


async def set_password(
    session: AsyncSession, user: User, password: str, *, actor: str, now: datetime
) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    user.updated_at = now
    await end_user_sessions(session, user, now)  # a changed password ends every session
    await audit.record(
        session,
        actor=actor,
        action="user.password",
        target_type="user",
        target_id=user.username,
        at=now,
    )


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with this password, or None (same cost whether or not it exists)."""
    user = await session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: datetime


async def create_session(
    session: AsyncSession,
    user: User,
    *,
    now: datetime,
    ttl: timedelta,
    remote: str,
    user_agent: str,
) -> NewSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.add(
        LoginSession(
            id=sha256_hex(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            last_seen=now,
            expires_at=now + ttl,
            remote=remote[:64],
            user_agent=user_agent[:255],
        )
    )
    return NewSession(token, csrf, now + ttl)


async def resolve_session(
    session: AsyncSession, token: str, *, now: datetime, ttl: timedelta
) -> tuple[User, LoginSession] | None:
    row = await session.get(LoginSession, sha256_hex(token))
    if row is None or row.expires_at <= now:
        return None
    user = await session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen >= _TOUCH_EVERY:
        row.last_seen = now
        row.expires_at = now + ttl
        await session.commit()
    return user, row


async def delete_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(LoginSession).where(LoginSession.id == sha256_hex(token)))


async def purge_expired_sessions(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


async def create_credential(
    session: AsyncSession,
    *,
    kind: CredentialKind,
    name: str,
    jurisdiction_id: str,
    actor: str,
    now: datetime,
) -> tuple[Credential, str]:
    """Create an API key (role integration) or device token (role wall); returns the secret."""
    if not name or len(name) > 128:
        raise ValidationFailed("name must be 1–128 characters")
    prefix = API_KEY_PREFIX if kind is CredentialKind.API_KEY else DEVICE_TOKEN_PREFIX
    role = Role.INTEGRATION if kind is CredentialKind.API_KEY else Role.WALL
    secret = prefix + secrets.token_urlsafe(32)
    cred = Credential(
        id=uuid.uuid4().hex[:16],
        kind=str(kind),
        name=name,
        secret_hash=sha256_hex(secret),
        role=str(role),
        jurisdiction_id=jurisdiction_id,
        created_by=actor,
        created_at=now,
    )
    session.add(cred)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action=f"{kind}.create",
        target_type="credential",
        target_id=cred.id,
        details={"name": name, "role": str(role), "jurisdiction": jurisdiction_id},
        at=now,
    )
    return cred, secret


async def resolve_credential(session: AsyncSession, secret: str) -> Credential | None:
    if not secret.startswith((API_KEY_PREFIX, DEVICE_TOKEN_PREFIX)):
        return None
    cred = await session.scalar(
        select(Credential).where(Credential.secret_hash == sha256_hex(secret))
    )
    if cred is None or cred.revoked_at is not None:
        return None
    return cred
