"""Foundation tables: jurisdictions, staff, sessions, credentials, subjects, audit log.

Later packages add their own tables on the same :class:`center.db.Base` (``alerts/models.py``,
``media/models.py``) with their own migrations.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from center.db import Base, UTCDateTime


class JurisdictionLevel(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"


class Role(StrEnum):
    ADMIN = "admin"
    DUTY = "duty"
    DISTRICT = "district"
    STREET = "street"
    VISIT_STAFF = "visit_staff"
    WALL = "wall"
    FAMILY = "family"
    SUBJECT = "subject"
    INTEGRATION = "integration"


class SupervisionLevel(StrEnum):
    STRICT = "strict"
    NORMAL = "normal"
    LENIENT = "lenient"


class CredentialKind(StrEnum):
    API_KEY = "api_key"
    DEVICE_TOKEN = "device_token"


class Jurisdiction(Base):
    __tablename__ = "jurisdictions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jurisdictions.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    sort: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<Jurisdiction {self.id} {self.level} {self.name}>"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    jurisdiction_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A ``subject`` login names the supervised person it is (0006_spotchecks); NULL for staff.
    subject_id: Mapped[str | None] = mapped_column(String(64), unique=True)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}@{self.jurisdiction_id}>"


class LoginSession(Base):
    """A server-side login session; the cookie holds a random token, the row its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    remote: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class Credential(Base):
    """An integration API key or a wall/terminal device token.

    The secret is shown once at creation; only its SHA-256 is stored (the secret is 256 bits
    of randomness, so a fast hash is enough and keeps per-request checks cheap).
    """

    __tablename__ = "credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    jurisdiction_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Subject(Base):
    """A supervised person (社区矫正对象). ``id`` is what integrations reference."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str] = mapped_column(String(8), default="")
    id_number: Mapped[str] = mapped_column(String(32), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    level: Mapped[str] = mapped_column(String(16), index=True)
    street_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"), index=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"), index=True)
    home_lat: Mapped[float | None] = mapped_column(Float)
    home_lon: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Subject {self.id} {self.level}@{self.street_id}>"


class AuditEntry(Base):
    """Append-only, hash-chained: ``hash = sha256(prev_hash + canonical(entry))``."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(96), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(96), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),)


class AuditHead(Base):
    """One row that serialises appends: writers lock it, read the last hash, move it on."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
