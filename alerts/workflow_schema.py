"""The workflow's columns on ``alarms`` and its own table for evidence.

Migration ``0004_workflow`` adds the SLA and ownership columns to ``alarms``. The engine's
ORM class (:class:`alerts.models.Alarm`) does not map them — the engine never reads them and
every one has a server default or is nullable — so the workflow reads and writes the table
through :data:`alarm_flow`, a Core view of the columns it needs in its own ``MetaData``. That
keeps the two packages independent of import order and lets every transition be one
``UPDATE … WHERE id = :id AND version = :v`` (optimistic concurrency).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from alerts.models import Alarm
from center.db import Base, UTCDateTime

_VIEW = MetaData()

_ADDED = (
    Column("owner_level", String(16)),
    Column("ack_due_at", UTCDateTime),
    Column("report_due_at", UTCDateTime),
    Column("loop_due_at", UTCDateTime),
    Column("loop_breached", Boolean),
    Column("disposition", String(32)),
    Column("escalations", Integer),
    Column("acknowledged_at", UTCDateTime),
    Column("dispatched_at", UTCDateTime),
    Column("reported_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
)

alarm_flow = Table(
    "alarms",
    _VIEW,
    # The engine's columns, copied so the view follows the engine's model ...
    *(
        Column(c.name, c.type, primary_key=c.primary_key)
        for c in Alarm.__table__.columns
        if c.name not in {a.name for a in _ADDED}
    ),
    # ... and the columns 0004_workflow adds.
    *_ADDED,
)

WORKFLOW_COLUMNS = (
    "owner_level",
    "ack_due_at",
    "report_due_at",
    "loop_due_at",
    "loop_breached",
    "disposition",
    "escalations",
    "acknowledged_at",
    "dispatched_at",
    "reported_at",
    "resolved_at",
)


def workflow_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow's part of the alarm JSON (ISO timestamps, as the engine's part)."""
    out: dict[str, Any] = {}
    for name in WORKFLOW_COLUMNS:
        value = row.get(name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["owner_level"] = out["owner_level"] or "street"
    out["loop_breached"] = bool(out["loop_breached"])
    out["escalations"] = int(out["escalations"] or 0)
    return out


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
