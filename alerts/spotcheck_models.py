"""The spot-check record (视频点验): one row per spot-check and its append-only items.

A spot-check is a video call an officer starts to a subject, optionally from an alarm. Its
state moves ``ringing → live → passed | failed`` or ends ``unreachable`` (no answer, or
declined, after the retry ladder) or ``cancelled``; ``waiting`` (an extension of the
issue's vocabulary) is the pause between two rings of the retry ladder. Every update is
versioned (``UPDATE … WHERE version = :v``) so a ring timeout firing on two instances, or
an answer racing the timeout, changes the row once.

Items carry what happened during the call — each ring attempt, the answer and its
location, challenges, snapshots (with SHA-256), the recording, the result, webhook
deliveries — in order, each also in the audit chain.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from center.db import Base, UTCDateTime


class SpotCheckState(StrEnum):
    RINGING = "ringing"
    WAITING = "waiting"
    LIVE = "live"
    PASSED = "passed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


FINAL_STATES: Final = frozenset(
    {
        SpotCheckState.PASSED,
        SpotCheckState.FAILED,
        SpotCheckState.UNREACHABLE,
        SpotCheckState.CANCELLED,
    }
)
OPEN_STATES: Final = frozenset(SpotCheckState) - FINAL_STATES


class FailReason(StrEnum):
    """Why an officer judged a spot-check failed (the result form's list)."""

    FACE_MISMATCH = "face_mismatch"  # not the supervised person (a proxy)
    CHALLENGE_FAILED = "challenge_failed"
    NOT_AT_HOME = "not_at_home"
    LOCATION_REFUSED = "location_refused"
    VIDEO_REFUSED = "video_refused"
    OTHER = "other"


class ItemType(StrEnum):
    ATTEMPT = "attempt"
    ANSWERED = "answered"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    LOCATION = "location"
    CHALLENGE = "challenge"
    SNAPSHOT = "snapshot"
    RECORDING = "recording"
    RESULT = "result"
    CANCELLED = "cancelled"
    ALARM = "alarm"
    WEBHOOK = "webhook"
    LIVENESS = "liveness"


class SpotCheck(Base):
    __tablename__ = "spotchecks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    street_id: Mapped[str] = mapped_column(String(32), index=True)
    district_id: Mapped[str] = mapped_column(String(32), index=True)
    alarm_id: Mapped[int | None] = mapped_column(Integer, index=True)
    room_id: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    started_by: Mapped[str] = mapped_column(String(96))
    officer_name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ring_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    answer_lat: Mapped[float | None] = mapped_column(Float)
    answer_lon: Mapped[float | None] = mapped_column(Float)
    answer_accuracy_m: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[float | None] = mapped_column(Float)
    missed_alarm_id: Mapped[int | None] = mapped_column(Integer)
    raised_alarm_id: Mapped[int | None] = mapped_column(Integer)
    # The subject's id while open, NULL once ended: unique, so two officers (or instances)
    # starting a spot-check of one subject at once get one spot-check and one 409.
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    def __repr__(self) -> str:
        return f"<SpotCheck {self.id} {self.state} {self.subject_id}>"


class SpotCheckItem(Base):
    __tablename__ = "spotcheck_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    spotcheck_id: Mapped[int] = mapped_column(
        ForeignKey("spotchecks.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(96), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")


TIMELINE_EVENTS: Final = (
    "spotcheck_started",
    "spotcheck_ringing",
    "spotcheck_answered",
    "spotcheck_declined",
    "spotcheck_no_answer",
    "spotcheck_location",
    "spotcheck_challenge",
    "spotcheck_liveness",
    "spotcheck_result",
    "spotcheck_recording",
    "spotcheck_cancelled",
)
"""Types of the events a spot-check writes on its alarm's timeline (snapshots go there as
``evidence``)."""


class SpotCheckAssignment(Base):
    """One subject drawn by the day's random campaign, due at a time in its office's periods.

    ``(day, subject_id)`` is unique, so a draw that runs twice (a restart, two instances)
    assigns nobody twice. Whether it is done is read from the spot-checks of that day.
    """

    __tablename__ = "spotcheck_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    street_id: Mapped[str] = mapped_column(String(32), index=True)
    district_id: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    weight: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("day", "subject_id"),)
