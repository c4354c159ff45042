"""The alarm engine's tables: check-ins, plans, leaves, device data, suppressions, alarms.

History tables (check-ins, device events, location fixes) are bounded by retention settings:
they serve idempotency and the alarm detail panel, not analytics. ``alarms`` carries two keys:
``dedup_key`` (unique, never NULL) names the occurrence — one per (subject, window) for
``no_checkin`` — so a second insert from a restart or a second instance is a no-op;
``open_key`` (unique, NULL when the episode ends) folds repeats of an episode kind into the
one open alarm. The workflow issue sets ``open_key`` to NULL when it resolves or closes an
alarm, which ends the episode.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from center.db import Base, UTCDateTime


class AlarmKind(StrEnum):
    NO_CHECKIN = "no_checkin"
    LATE_CHECKIN = "late_checkin"
    OUT_OF_BOUNDS = "out_of_bounds"
    OVERDUE_RETURN = "overdue_return"
    SEPARATION = "separation"
    TAMPER = "tamper"
    LOW_BATTERY = "low_battery"
    DEVICE_OFFLINE = "device_offline"
    SOS = "sos"
    SPOTCHECK_MISSED = "spotcheck_missed"
    FACE_MISMATCH = "face_mismatch"


class AlarmState(StrEnum):
    """The workflow's states; the engine creates ``new`` (or ``suppressed``, never raised)."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    VERIFYING = "verifying"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    SUPPRESSED = "suppressed"


OPEN_STATES: frozenset[str] = frozenset(
    {
        AlarmState.NEW,
        AlarmState.ACKNOWLEDGED,
        AlarmState.DISPATCHED,
        AlarmState.VERIFYING,
        AlarmState.REOPENED,
    }
)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


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
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
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

    __table_args__ = (Index("ix_checkins_subject_at", "subject_id", "at"),)


class CheckinPlan(Base):
    """A named plan; a row named after a level replaces that level's default."""

    __tablename__ = "checkin_plans"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[str] = mapped_column(String(512))
    grace_s: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(255), default="")
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
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    subject_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_device_events_subject_at", "subject_id", "at"),)


class LocationFix(Base):
    __tablename__ = "location_fixes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    subject_id: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float] = mapped_column(Float)
    in_city: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_location_fixes_subject_at", "subject_id", "at"),)


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

    __table_args__ = (Index("ix_alarms_state_kind", "state", "kind"),)

    def __repr__(self) -> str:
        return f"<Alarm {self.id} {self.kind} {self.state} {self.subject_id}>"


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
