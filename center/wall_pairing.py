"""One-time pairing codes for wall screens (大屏配对码).

Typing a 43-character device token into a wall's kiosk browser is impractical, so staff
create a short numeric code and the wall exchanges it once for a device token of its own
(shown to nobody; the wall keeps it in localStorage). The code is stored as a hash, expires
after ``wall_pairing_ttl_s``, and is claimed with one conditional UPDATE, so two screens
racing for the same code get one token between them. Six digits are guessable only with
unlimited tries: the HTTP endpoint throttles failures per address.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from center import audit
from center.db import Base, UTCDateTime
from center.errors import ValidationFailed
from center.identity import create_credential, sha256_hex
from center.models import CredentialKind

CODE_DIGITS = 6
NAME_MAX = 100  # a wall's name, as staff type it


class WallPairingCode(Base):
    __tablename__ = "wall_pairing_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    jurisdiction_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"))
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    credential_id: Mapped[str | None] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"<WallPairingCode {self.name}@{self.jurisdiction_id} used={self.used_at}>"


def _hash(code: str) -> str:
    return sha256_hex(f"wall-pairing:{code}")


async def create_code(
    session: AsyncSession,
    *,
    name: str,
    jurisdiction_id: str,
    actor: str,
    now: datetime,
    ttl: timedelta,
) -> tuple[str, datetime]:
    """A fresh code (unique among live codes) and its expiry; the caller commits."""
    if not name or len(name) > NAME_MAX:
        raise ValidationFailed(f"name must be 1–{NAME_MAX} characters")
    await session.execute(delete(WallPairingCode).where(WallPairingCode.expires_at <= now))
    for _ in range(20):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if await session.get(WallPairingCode, _hash(code)) is None:
            break
    else:  # pragma: no cover - a million codes live at once
        raise ValidationFailed("too many live pairing codes; try again later")
    expires = now + ttl
    session.add(
        WallPairingCode(
            code_hash=_hash(code),
            name=name,
            jurisdiction_id=jurisdiction_id,
            created_by=actor,
            created_at=now,
            expires_at=expires,
        )
    )
    await audit.record(
        session,
        actor=actor,
        action="wall.pairing_code",
        target_type="jurisdiction",
        target_id=jurisdiction_id,
        details={"name": name, "expires_at": expires.isoformat()},
        at=now,
    )
    return code, expires


async def redeem_code(
    session: AsyncSession, code: str, *, remote: str, now: datetime
) -> str | None:
    """Claim ``code`` once and return a new wall device token; None if unknown, expired or
    used. The caller commits."""
    if not (code.isascii() and code.isdigit()) or len(code) != CODE_DIGITS:
        return None
    digest = _hash(code)
    claimed = await session.execute(
        update(WallPairingCode)
        .where(
            WallPairingCode.code_hash == digest,
            WallPairingCode.used_at.is_(None),
            WallPairingCode.expires_at > now,
        )
        .values(used_at=now)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    row = await session.get(WallPairingCode, digest)
    assert row is not None
    cred, secret = await create_credential(
        session,
        kind=CredentialKind.DEVICE_TOKEN,
        name=f"wall:{row.name}"[:128],
        jurisdiction_id=row.jurisdiction_id,
        actor=f"pairing:{remote or 'unknown'}"[:64],
        now=now,
    )
    row.credential_id = cred.id
    return secret
