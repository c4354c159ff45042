"""The alarm engine's tables: check-ins, plans, leaves, device data, suppressions, alarms.

History tables (check-ins, device events, location fixes) are bounded by retention settings:
they serve idempotency and the alarm detail panel, not analytics. ``alarms`` carries two keys:
``dedup_key`` (unique, never NULL) names the occurrence — one per (subject, window) for
``no_checkin`` — so a second insert from a restart or a second instance is a no-op;
``open_key`` (unique, NULL when the episode ends) folds repeats of an episode kind into the
one open alarm. The workflow issue sets ``open_key`` to NULL when it resolves or closes an
alarm, which ends the episode.

:class:`Alarm` maps every column of ``alarms``, the engine's (``0002_alerts``) and the
workflow's (``0004_workflow``: ownership, SLA deadlines, disposition); the vocabulary
(kinds, severities, states, :data:`OPEN_STATES`) lives in :mod:`center.alarm_vocab` and is
re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from center.alarm_vocab import OPEN_STATES as OPEN_STATES
from center.alarm_vocab import AlarmKind as AlarmKind
from center.alarm_vocab import AlarmState as AlarmState
from center.alarm_vocab import Severity as Severity
from center.db import Base, UTCDateTime


class CheckinSource(StrEnum):
    APP = "app"
    TERMINAL = "terminal"
    OFFICER = "officer"


class DeviceEventKind(StrEnum):
    TAMPER = "tamper"
    LOW_BATTERY = "low_battery"
    SOS = "sos"
    OFFLINE = "offline"
    ONLINE = "online"


class DeviceType(StrEnum):
    PHONE = "phone"
    BRACELET = "bracelet"


class LeaveState(StrEnum):
    ACTIVE = "active"
    RETURNED = "returned"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


class Checkin(Base):
    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    subject_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    face_verified: Mapped[bool | None] = mapped_column(Boolean)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    on_leave: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credential_id: Mapped[str] = mapped_column(String(32), default="")

    # idempotency per API key: one integration's event ids never collide with another's
    __table_args__ = (
        Index("ix_checkins_subject_at", "subject_id", "at"),
        UniqueConstraint("credential_id", "event_id", name="uq_checkins_credential_event"),
    )


class CheckinPlan(Base):
    """A named plan; a row named after a level replaces that level's default."""

    __tablename__ = "checkin_plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[str] = mapped_column(String(512))
    grace_s: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LiveSetting(Base):
    """An alarm setting changed from the admin page; replaces the start-up setting of the
    same name (web/admin_alarm_settings.py)."""

    __tablename__ = "live_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(2000))
    updated_by: Mapped[str] = mapped_column(String(96), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SubjectPlan(Base):
    """Per-subject override of the level's plan."""

    __tablename__ = "subject_plans"

    subject_id: Mapped[str] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True
    )
    plan_id: Mapped[str] = mapped_column(ForeignKey("checkin_plans.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Leave(Base):
    __tablename__ = "leaves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    destination: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(255), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(String(16), default=LeaveState.ACTIVE, index=True)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    return_event_id: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(96), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    kinds: Mapped[str] = mapped_column(String(255), default="")  # comma list; empty: all
    reason: Mapped[str] = mapped_column(String(255))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(96), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeviceEvent(Base):
    __tablename__ = "device_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    subject_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credential_id: Mapped[str] = mapped_column(String(32), default="", server_default="")

    __table_args__ = (
        Index("ix_device_events_subject_at", "subject_id", "at"),
        UniqueConstraint("credential_id", "event_id", name="uq_device_events_credential_event"),
    )


class LocationFix(Base):
    __tablename__ = "location_fixes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    subject_id: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float] = mapped_column(Float)
    in_city: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credential_id: Mapped[str] = mapped_column(String(32), default="", server_default="")

    __table_args__ = (
        Index("ix_location_fixes_subject_at", "subject_id", "at"),
        UniqueConstraint("credential_id", "event_id", name="uq_location_fixes_credential_event"),
    )


class Alarm(Base):
    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    street_id: Mapped[str] = mapped_column(String(32), index=True)
    district_id: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checkin_event_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The workflow's columns (0004_workflow); server defaults, so the engine's inserts
    # need not name them.
    owner_level: Mapped[str] = mapped_column(String(16), server_default="street")
    ack_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    loop_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    loop_breached: Mapped[bool] = mapped_column(Boolean, server_default=false())
    disposition: Mapped[str | None] = mapped_column(String(32))
    escalations: Mapped[int] = mapped_column(Integer, server_default="0")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_alarms_state_kind", "state", "kind"),)

    def __repr__(self) -> str:
        return f"<Alarm {self.id} {self.kind} {self.state} {self.subject_id}>"


ALARMS: Table = Alarm.__table__  # type: ignore[assignment]
CHECKINS: Table = Checkin.__table__  # type: ignore[assignment]
"""The ``alarms`` table for Core statements (bulk inserts, ``UPDATE … WHERE version``)."""


class AlarmEvent(Base):
    """The alarm's timeline; the engine writes raised/repeated/late_checkin/cleared, the
    workflow appends its transitions."""

    __tablename__ = "alarm_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(96), default="")
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[str] = mapped_column(Text, default="{}")


class WatcherMark(Base):
    """How far the deadline watcher has evaluated (shared by every instance)."""

    __tablename__ = "watcher_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    processed_until: Mapped[datetime] = mapped_column(UTCDateTime)
