"""The face records: a subject's baseline photos and every photo checked against them.

A baseline photo (``face_baselines``) is ``pending`` until an officer approves it; only
approved ones are compared with. Its embedding (128 numbers, JSON) is computed once, when
the photo arrives. A face check (``face_checks``) is one photo of a check-in or of a
spot-check snapshot: ``pending`` while queued for the worker pool, then one of the outcomes
of :mod:`alerts.faces`, with the distance kept on the record. ``alarm_id`` is set once, by
the update that raised the ``face_mismatch`` alarm, so a check never raises two.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from center.db import Base, UTCDateTime

MAX_BASELINE: Final = 5
PENDING: Final = "pending"


class BaselineState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"


class BaselineSource(StrEnum):
    UPLOAD = "upload"
    SNAPSHOT = "snapshot"
    EXCUSED = "excused"


class FaceBaseline(Base):
    __tablename__ = "face_baselines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    embedding: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str] = mapped_column(String(96), default="")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("subject_id", "sha256"),)

    def __repr__(self) -> str:
        return f"<FaceBaseline {self.id} {self.state} {self.subject_id}>"


class FaceCheck(Base):
    __tablename__ = "face_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    checkin_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    spotcheck_id: Mapped[int | None] = mapped_column(Integer, index=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    distance: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    problem: Mapped[str] = mapped_column(String(200), default="")
    embedding: Mapped[str | None] = mapped_column(Text)
    alarm_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<FaceCheck {self.id} {self.outcome} {self.subject_id}>"
