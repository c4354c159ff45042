"""The visit records: prisons and their terminals, inmates, relatives, visit points, visits
and their parties (one per relative, with the join code).

A visit's state moves ``requested → approved → waiting → live → ended``; ``ended`` carries
the outcome (``completed``, ``terminated``, ``no_show``, ``cancelled``, ``refused``). Every
update is versioned (``UPDATE … WHERE version = :v``) so two staff (or instances) acting at
once change the row once. Join codes and ID numbers are stored as SHA-256 only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from center.db import Base, UTCDateTime


class VisitState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    WAITING = "waiting"
    LIVE = "live"
    ENDED = "ended"


class VisitOutcome(StrEnum):
    COMPLETED = "completed"
    TERMINATED = "terminated"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    REFUSED = "refused"


ACTIVE_STATES: Final = frozenset(
    {VisitState.REQUESTED, VisitState.APPROVED, VisitState.WAITING, VisitState.LIVE}
)
"""States that hold a slot (a terminal, a visit-point room, the inmate's month)."""


class RelativeStatus(StrEnum):
    PENDING = "pending"  # real-person verification and proof of relationship not yet checked
    APPROVED = "approved"
    BANNED = "banned"  # until ``banned_until``


class Prison(Base):
    """A prison; its visit rules override the ``visit_*`` settings where set (None: the
    setting), since each prison's rules in force differ (Guangdong's lead time is not
    Hunan's)."""

    __tablename__ = "prisons"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    visit_minutes: Mapped[int | None] = mapped_column(Integer)
    visit_max_relatives: Mapped[int | None] = mapped_column(Integer)
    visit_monthly_quota: Mapped[int | None] = mapped_column(Integer)
    visit_lead_working_days: Mapped[int | None] = mapped_column(Integer)


class PrisonTerminal(Base):
    """A visit terminal inside a prison; it logs in with a device token (``credential_id``).
    One terminal holds one visit at a time: the prison's terminals are its capacity."""

    __tablename__ = "prison_terminals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prison_id: Mapped[str] = mapped_column(ForeignKey("prisons.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    credential_id: Mapped[str | None] = mapped_column(String(32), unique=True)


class PrisonStaff(Base):
    """Which prison a ``visit_staff`` login works for: it sees and acts on that prison's
    visits only (others are 404, as unknown ones)."""

    __tablename__ = "prison_staff"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    prison_id: Mapped[str] = mapped_column(ForeignKey("prisons.id"), primary_key=True)


class Inmate(Base):
    __tablename__ = "inmates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prison_id: Mapped[str] = mapped_column(ForeignKey("prisons.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))


class Relative(Base):
    """A relative as registered for one inmate: status and ban are per inmate. The ID number
    is kept as SHA-256 plus its last four digits (what staff read back on the phone)."""

    __tablename__ = "relatives"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inmate_id: Mapped[str] = mapped_column(ForeignKey("inmates.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    relationship: Mapped[str] = mapped_column(String(32))
    id_number_hash: Mapped[str] = mapped_column(String(64), index=True)
    id_last4: Mapped[str] = mapped_column(String(4))
    phone: Mapped[str] = mapped_column(String(32), default="")
    photo_path: Mapped[str] = mapped_column(String(255), default="")
    proof_path: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))
    banned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VisitPoint(Base):
    """A room set in a judicial office (会见点); ``capacity`` visits at a time."""

    __tablename__ = "visit_points"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    street_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"), index=True)
    capacity: Mapped[int] = mapped_column(Integer, default=1)


class Visit(Base):
    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prison_id: Mapped[str] = mapped_column(ForeignKey("prisons.id"), index=True)
    inmate_id: Mapped[str] = mapped_column(ForeignKey("inmates.id"), index=True)
    visit_point_id: Mapped[str | None] = mapped_column(ForeignKey("visit_points.id"), index=True)
    terminal_id: Mapped[str] = mapped_column(ForeignKey("prison_terminals.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    month: Mapped[str] = mapped_column(String(7), index=True)  # local YYYY-MM (the quota's)
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    booked_by: Mapped[str] = mapped_column(String(96))
    approved_by: Mapped[str] = mapped_column(String(96), default="")
    second_approved_by: Mapped[str] = mapped_column(String(96), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    room_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    live_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Visit {self.id} {self.state}/{self.outcome} {self.inmate_id}>"


class VisitParty(Base):
    """One relative on one visit: the join code (SHA-256), its validity and its single use,
    and the guest session the code was exchanged for."""

    __tablename__ = "visit_parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    relative_id: Mapped[int] = mapped_column(ForeignKey("relatives.id"), index=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    guest_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class ItemType(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    WARNING = "warning"  # the automatic 5- and 1-minute warnings
    TEXT = "text"  # a staff warning text shown to both sides
    MUTE = "mute"
    TERMINATED = "terminated"
    ENDED = "ended"
    NO_SHOW = "no_show"
    RECORDING = "recording"
    QUALITY = "quality"  # each side's median grade, when the room closed


class TerminateReason(StrEnum):
    """The rule list a monitor terminates a visit by."""

    CODED_SPEECH = "coded_speech"
    UNAPPROVED_LANGUAGE = "unapproved_language"
    DEVICE_IN_VIEW = "device_in_view"  # a phone or a recorder in the picture
    UNAUTHORISED_PERSON = "unauthorised_person"
    OTHER = "other"


class VisitItem(Base):
    """What happened during a visit, in order (also on the audit chain)."""

    __tablename__ = "visit_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(96), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")


class NoticeKind(StrEnum):
    APPROVED = "approved"  # with the relative's join code and link
    REFUSED = "refused"
    CANCELLED = "cancelled"
    REMINDER = "reminder"  # 18:00 local on the day before the slot


class NoticeState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # every try failed
    SKIPPED = "skipped"  # no gateway configured (``visit_notify_url`` empty)
    CANCELLED = "cancelled"  # a reminder of a visit that ended before it was due


class VisitNotice(Base):
    """One notice to one relative through the SMS/WeChat gateway, and how its delivery went.

    One row per (visit, kind, relative): the gateway's delivery id
    ``visit-<id>-<kind>-<relative>`` is stable over the tries. ``sealed`` holds the join
    code and link of an ``approved`` notice encrypted under ``visit_notify_secret`` (the
    code is never stored in clear) until the notice is sent or has failed."""

    __tablename__ = "visit_notices"
    __table_args__ = (UniqueConstraint("visit_id", "kind", "relative_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    relative_id: Mapped[int] = mapped_column(ForeignKey("relatives.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    sealed: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
