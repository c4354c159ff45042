"""Revocation that takes effect at once: API keys, device tokens, users and sessions.

Revoking changes the database (``credentials.revoked_at``; a disabled user and their
sessions; a deleted session) *and* appends a row to ``revocations`` in the same transaction.
Every instance forgets what it cached for a revoked credential and closes the open
websockets it authenticated, within a second, however the revocation came:

- from this instance's admin API: applied here at once and announced on the bus topic
  ``revocations`` (other instances on the same Redis apply it on delivery);
- from ``python run.py revoke-key`` / ``disable-user`` (another process, perhaps with no bus
  at all): each instance's :class:`RevocationFeed` reads new ``revocations`` rows twice a
  second — one indexed query — so nothing depends on the bus being up.

Applying one twice is harmless, so both paths may deliver the same revocation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import Integer, String, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from center import audit
from center.db import Base, UTCDateTime
from center.errors import NotFound
from center.models import Credential, LoginSession, User

_LOGGER = logging.getLogger(__name__)
POLL_S: Final = 0.5


class RevokedKind(StrEnum):
    CREDENTIAL = "credential"  # an API key or device token, by credential id
    USER = "user"  # every session of a user, by user id
    SESSION = "session"  # one login session, by the SHA-256 of its token


class RevocationRow(Base):
    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True, slots=True)
class Revoked:
    kind: RevokedKind
    target: str


async def _note(session: AsyncSession, kind: RevokedKind, target: str, now: datetime) -> Revoked:
    session.add(RevocationRow(kind=str(kind), target=target, at=now))
    return Revoked(kind, target)


async def revoke_credential(
    session: AsyncSession,
    *,
    cred_id: str | None = None,
    name: str | None = None,
    actor: str,
    now: datetime,
) -> tuple[Credential, Revoked | None]:
    """Revoke the key or token with this id (or the live one with this name); ``None`` as
    the second value when it was revoked already. The caller commits."""
    query = select(Credential)
    if cred_id is not None:
        query = query.where(Credential.id == cred_id)
    else:
        query = query.where(Credential.name == name).order_by(Credential.revoked_at.is_not(None))
    cred = (await session.scalars(query.limit(1))).first()
    if cred is None:
        raise NotFound(f"no API key or device token {cred_id or name!r}")
    if cred.revoked_at is not None:
        return cred, None
    await session.execute(update(Credential).where(Credential.id == cred.id).values(revoked_at=now))
    cred.revoked_at = now
    await audit.record(
        session,
        actor=actor,
        action="credential.revoke",
        target_type="credential",
        target_id=cred.id,
        details={"name": cred.name, "kind": cred.kind},
        at=now,
    )
    return cred, await _note(session, RevokedKind.CREDENTIAL, cred.id, now)


async def end_user_sessions(session: AsyncSession, user: User, now: datetime) -> Revoked:
    """Delete every login session of ``user`` (password changed, user disabled)."""
    await session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    return await _note(session, RevokedKind.USER, str(user.id), now)


async def disable_user(
    session: AsyncSession, user: User, *, actor: str, now: datetime
) -> Revoked | None:
    """Disable ``user`` and end their sessions; ``None`` when already disabled."""
    if not user.active:
        return None
    user.active = False
    user.updated_at = now
    revoked = await end_user_sessions(session, user, now)
    await audit.record(
        session,
        actor=actor,
        action="user.disable",
        target_type="user",
        target_id=user.username,
        at=now,
    )
    return revoked


async def end_session(session: AsyncSession, session_hash: str, now: datetime) -> Revoked:
    """Delete one login session (logout)."""
    await session.execute(delete(LoginSession).where(LoginSession.id == session_hash))
    return await _note(session, RevokedKind.SESSION, session_hash, now)


class RevocationFeed:
    """Reads new ``revocations`` rows and hands each to ``apply`` (see the module docstring).

    Starts from the newest row at start-up: what was revoked before is already refused by
    the database checks, and nothing was cached or open yet.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        apply: Callable[[Revoked], object],
        *,
        poll_s: float = POLL_S,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._apply = apply
        self._poll_s = poll_s
        self._last = 0

    async def start(self) -> None:
        async with self._sessionmaker() as session:
            self._last = int(await session.scalar(select(func.max(RevocationRow.id))) or 0)

    async def poll(self) -> int:
        """Apply the rows added since the last poll; returns how many."""
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(RevocationRow.id, RevocationRow.kind, RevocationRow.target)
                    .where(RevocationRow.id > self._last)
                    .order_by(RevocationRow.id)
                    .limit(1000)
                )
            ).all()
        for row_id, kind, target in rows:
            self._last = max(self._last, row_id)
            try:
                self._apply(Revoked(RevokedKind(kind), target))
            except Exception:
                _LOGGER.exception("applying revocation %s %s failed", kind, target)
        return len(rows)

    async def run(self) -> None:
        """Poll forever (real time: this is I/O pacing, not a business deadline)."""
        while True:
            try:
                await self.poll()
            except Exception as exc:
                _LOGGER.warning("revocation feed: %s", exc)
            await asyncio.sleep(self._poll_s)
