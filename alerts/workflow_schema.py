"""The workflow's own table: evidence files kept for an alarm.

The workflow's columns on ``alarms`` (``0004_workflow``: ownership, SLA deadlines,
disposition) are mapped by :class:`alerts.models.Alarm` itself, one model for the one table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from center.db import Base, UTCDateTime


class EvidenceKind:
    FILE = "file"
    SNAPSHOT = "snapshot"
    RECORDING = "recording"


class AlarmEvidence(Base):
    """A file kept as evidence for an alarm; the bytes live under ``<data_dir>/evidence``
    named by their SHA-256, so the row and the file check each other."""

    __tablename__ = "alarm_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(Text, default="")
    uploaded_by: Mapped[str] = mapped_column(String(96))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<AlarmEvidence {self.id} alarm={self.alarm_id} {self.sha256[:12]}>"
