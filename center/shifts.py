"""Duty roster and shifts (值班/交接班): who is on duty, sign-on/off and handover notes.

The city center must never be without staff: at least ``minimum`` officers (two in the seed
centers) are signed on at all times. Every sign-on and sign-off publishes ``duty.staffing``
on the ``duty`` topic so the console and the wall show a warning as soon as the count drops,
and a timer signs an officer off at the end of a rostered shift (plus a grace period) so a
forgotten sign-off does not hide a staffing gap forever.

Handover: signing off requires a note for the next officer; signing on returns the latest
notes of that jurisdiction, so nothing said at a change of shift is lost.

The request bodies are declared here as models (:class:`SignOffIn`, :class:`ShiftIn`, …):
the web layer decodes them once; the service keeps only the rules that span fields (a shift
ends after it starts, lasts at most 48 hours).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

import msgspec
from sqlalchemy import ForeignKey, Index, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from center import audit
from center.authz import Principal, within
from center.bus import Bus
from center.clock import Clock
from center.db import Base, UTCDateTime
from center.errors import Conflict, NotFound, ValidationFailed
from center.jurisdictions import JurisdictionTree
from center.models import User
from center.text import NOT_BLANK, PLAIN
from center.timers import FiredTimer, TimerService
from center.topics import Event

_LOGGER = logging.getLogger(__name__)

TOPIC: Final = "duty"
STAFFING_EVENT: Final = Event.DUTY_STAFFING
SHIFT_END_TIMER: Final = "shift_end"
MAX_NOTE: Final = 4000


class DutyShift(Base):
    """A rostered shift: a jurisdiction, a time span and the officers planned for it."""

    __tablename__ = "duty_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    jurisdiction_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    officers: Mapped[str] = mapped_column(Text, default="")  # comma-separated usernames
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(96), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DutySignOn(Base):
    """One officer's time on duty; open while ``signed_off_at`` is NULL (one open per user)."""

    __tablename__ = "duty_signons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    jurisdiction_id: Mapped[str] = mapped_column(ForeignKey("jurisdictions.id"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("duty_shifts.id"))
    signed_on_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handover_note: Mapped[str] = mapped_column(Text, default="")
    auto_signed_off: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        Index(
            "uq_duty_signons_open_user",
            "user_id",
            unique=True,
            sqlite_where=signed_off_at.is_(None),
            postgresql_where=signed_off_at.is_(None),
        ),
    )


@dataclass(frozen=True, slots=True)
class Staffing:
    jurisdiction_id: str
    on_duty: int
    minimum: int
    officers: tuple[str, ...]

    @property
    def warning(self) -> bool:
        return self.on_duty < self.minimum

    def as_json(self) -> dict[str, Any]:
        return {
            "jurisdiction_id": self.jurisdiction_id,
            "on_duty": self.on_duty,
            "minimum": self.minimum,
            "warning": self.warning,
            "officers": list(self.officers),
        }


def shift_json(s: DutyShift) -> dict[str, Any]:
    return {
        "id": s.id,
        "jurisdiction_id": s.jurisdiction_id,
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "officers": [o for o in s.officers.split(",") if o],
        "note": s.note,
        "created_by": s.created_by,
    }


def signon_json(s: DutySignOn) -> dict[str, Any]:
    return {
        "id": s.id,
        "username": s.username,
        "jurisdiction_id": s.jurisdiction_id,
        "shift_id": s.shift_id,
        "signed_on_at": s.signed_on_at.isoformat(),
        "signed_off_at": s.signed_off_at.isoformat() if s.signed_off_at else None,
        "handover_note": s.handover_note,
        "auto_signed_off": s.auto_signed_off,
    }


MAX_ID: Final = 2_147_483_647
MAX_OFFICERS: Final = 200
Note = Annotated[str, PLAIN, msgspec.Meta(max_length=MAX_NOTE)]
Username = Annotated[str, PLAIN, msgspec.Meta(max_length=64)]
JurisdictionId = Annotated[str, PLAIN, msgspec.Meta(max_length=32)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


class SignOnIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /api/v1/duty/sign-on`` (the body is optional)."""

    shift_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None


class SignOffIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /api/v1/duty/sign-off``: the handover note is required (not blank): it tells
    the next shift what is open."""

    handover_note: Annotated[str, NOT_BLANK, msgspec.Meta(max_length=MAX_NOTE)]


class ShiftIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``POST /api/v1/duty/shifts``; ``jurisdiction`` defaults to the caller's own."""

    starts_at: AwareTime
    ends_at: AwareTime
    officers: Annotated[list[Username], msgspec.Meta(max_length=MAX_OFFICERS)] = []
    note: Note = ""
    jurisdiction: JurisdictionId | None = None


class ShiftsQuery(msgspec.Struct, frozen=True):
    """``GET /api/v1/duty/shifts`` (default: from a day ago to a week ahead)."""

    from_: AwareTime | None = msgspec.field(name="from", default=None)
    to: AwareTime | None = None
    jurisdiction: JurisdictionId | None = None


class ShiftService:
    """Roster, sign-on/off and the staffing count of the city center (``staffed_id``)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        clock: Clock,
        timers: TimerService,
        *,
        tree: JurisdictionTree | None = None,
        staffed_id: str,
        minimum: int = 2,
        grace: timedelta = timedelta(minutes=30),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._clock = clock
        self._timers = timers
        self._tree = tree
        self.staffed_id = staffed_id
        self.minimum = minimum
        self._grace = grace
        timers.register(SHIFT_END_TIMER, self._on_shift_end)

    # -- roster ---------------------------------------------------------------------------

    async def create_shift(
        self,
        principal: Principal,
        *,
        jurisdiction_id: str,
        starts_at: datetime,
        ends_at: datetime,
        officers: list[str],
        note: str = "",
    ) -> DutyShift:
        if ends_at <= starts_at:
            raise ValidationFailed.of({"ends_at": "must be after 'starts_at'"})
        if ends_at - starts_at > timedelta(hours=48):
            raise ValidationFailed.of({"ends_at": "must be at most 48 hours after 'starts_at'"})
        now = self._clock.now()
        async with self._sessionmaker() as session:
            officers = await self._officers(session, jurisdiction_id, officers)
            shift = DutyShift(
                jurisdiction_id=jurisdiction_id,
                starts_at=starts_at,
                ends_at=ends_at,
                officers=",".join(o.strip() for o in officers if o.strip()),
                note=note.strip(),
                created_by=principal.actor,
                created_at=now,
            )
            session.add(shift)
            await session.flush()
            await audit.record(
                session,
                actor=principal.actor,
                action="duty.shift_created",
                target_type="shift",
                target_id=str(shift.id),
                details=shift_json(shift),
                at=now,
            )
            await session.commit()
        return shift

    async def _officers(
        self, session: AsyncSession, jurisdiction_id: str, names: list[str]
    ) -> list[str]:
        """The rostered usernames, each an active user of the shift's jurisdiction or below;
        one answer for unknown, disabled and foreign names (a roster is no way to learn who
        has an account elsewhere)."""
        names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        if not names:
            return []
        rows = await session.execute(
            select(User.username, User.jurisdiction_id).where(
                User.username.in_(names), User.active.is_(True)
            )
        )
        place = {name: jid for name, jid in rows.all()}
        home = self._tree.path(jurisdiction_id) if self._tree else (jurisdiction_id,)
        problems = {}
        for i, name in enumerate(names):
            jid = place.get(name)
            if jid is None or not within(home, self._tree.path(jid) if self._tree else (jid,)):
                problems[f"officers[{i}]"] = f"{name}: no such officer in this jurisdiction"
        if problems:
            raise ValidationFailed.of(problems)
        return names

    async def shifts(self, jurisdiction_id: str, start: datetime, end: datetime) -> list[DutyShift]:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(DutyShift)
                .where(
                    DutyShift.jurisdiction_id == jurisdiction_id,
                    DutyShift.starts_at < end,
                    DutyShift.ends_at > start,
                )
                .order_by(DutyShift.starts_at)
            )
            return list(rows.scalars().all())

    # -- sign on / off --------------------------------------------------------------------

    async def sign_on(
        self, principal: Principal, *, shift_id: int | None = None
    ) -> tuple[DutySignOn, list[DutySignOn]]:
        """Sign the caller on; returns the sign-on and the latest handover notes to read."""
        now = self._clock.now()
        jid = principal.jurisdiction[-1]
        try:
            async with self._sessionmaker() as session:
                shift = None
                if shift_id is not None:
                    shift = await session.get(DutyShift, shift_id)
                    if shift is None or shift.jurisdiction_id != jid:
                        raise NotFound("no such shift in your jurisdiction")
                row = DutySignOn(
                    user_id=principal.id,
                    username=principal.name,
                    jurisdiction_id=jid,
                    shift_id=shift_id,
                    signed_on_at=now,
                    handover_note="",
                    auto_signed_off=False,
                )
                session.add(row)
                await session.flush()
                if shift is not None and shift.ends_at > now:
                    await self._timers.schedule(
                        session,
                        kind=SHIFT_END_TIMER,
                        key=f"{SHIFT_END_TIMER}:{row.id}",
                        ref=f"signon:{row.id}",
                        due_at=shift.ends_at + self._grace,
                        payload={"signon_id": row.id},
                    )
                await audit.record(
                    session,
                    actor=principal.actor,
                    action="duty.sign_on",
                    target_type="signon",
                    target_id=str(row.id),
                    details={"jurisdiction": jid, "shift_id": shift_id},
                    at=now,
                )
                handovers = await self._handovers(session, jid, limit=5)
                await session.commit()
        except IntegrityError:
            raise Conflict("you are already signed on; sign off first") from None
        await self._announce(jid)
        return row, handovers

    async def sign_off(self, principal: Principal, *, handover_note: str) -> DutySignOn:
        """``handover_note`` is validated by :class:`SignOffIn` (required, not blank)."""
        note = handover_note.strip()
        now = self._clock.now()
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(DutySignOn).where(
                    DutySignOn.user_id == principal.id, DutySignOn.signed_off_at.is_(None)
                )
            )
            if row is None:
                raise Conflict("you are not signed on")
            done = await self._close(session, row, now, note, auto=False)
            if not done:
                raise Conflict("you were signed off meanwhile")
            await audit.record(
                session,
                actor=principal.actor,
                action="duty.sign_off",
                target_type="signon",
                target_id=str(row.id),
                details={"handover_note": note},
                at=now,
            )
            await session.commit()
            jid = row.jurisdiction_id
        await self._announce(jid)
        return row

    async def _close(
        self, session: AsyncSession, row: DutySignOn, now: datetime, note: str, *, auto: bool
    ) -> bool:
        result = await session.execute(
            update(DutySignOn)
            .where(DutySignOn.id == row.id, DutySignOn.signed_off_at.is_(None))
            .values(signed_off_at=now, handover_note=note, auto_signed_off=auto)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            return False
        row.signed_off_at, row.handover_note, row.auto_signed_off = now, note, auto
        await self._timers.cancel(session, ref=f"signon:{row.id}")
        return True

    async def _on_shift_end(self, session: AsyncSession, timer: FiredTimer) -> Any:
        row = await session.get(DutySignOn, int(timer.payload.get("signon_id", 0)))
        if row is None or row.signed_off_at is not None:
            return None
        note = "（班次结束，系统自动签退）"
        if not await self._close(session, row, timer.fired_at, note, auto=True):
            return None
        await audit.record(
            session,
            actor="system:shifts",
            action="duty.auto_sign_off",
            target_type="signon",
            target_id=str(row.id),
            details={"username": row.username},
            at=timer.fired_at,
        )
        jid = row.jurisdiction_id

        async def announce() -> None:
            await self._announce(jid)

        return announce

    # -- reading --------------------------------------------------------------------------

    async def _handovers(
        self, session: AsyncSession, jurisdiction_id: str, *, limit: int
    ) -> list[DutySignOn]:
        rows = await session.execute(
            select(DutySignOn)
            .where(
                DutySignOn.jurisdiction_id == jurisdiction_id,
                DutySignOn.signed_off_at.is_not(None),
            )
            .order_by(DutySignOn.signed_off_at.desc(), DutySignOn.id.desc())
            .limit(limit)
        )
        return list(rows.scalars().all())

    async def handovers(self, jurisdiction_id: str, *, limit: int = 20) -> list[DutySignOn]:
        async with self._sessionmaker() as session:
            return await self._handovers(session, jurisdiction_id, limit=limit)

    async def on_duty(self, jurisdiction_id: str) -> list[DutySignOn]:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(DutySignOn)
                .where(
                    DutySignOn.jurisdiction_id == jurisdiction_id,
                    DutySignOn.signed_off_at.is_(None),
                )
                .order_by(DutySignOn.signed_on_at)
            )
            return list(rows.scalars().all())

    async def staffing(self, jurisdiction_id: str | None = None) -> Staffing:
        jid = jurisdiction_id or self.staffed_id
        async with self._sessionmaker() as session:
            names = (
                await session.execute(
                    select(DutySignOn.username)
                    .where(DutySignOn.jurisdiction_id == jid, DutySignOn.signed_off_at.is_(None))
                    .order_by(DutySignOn.signed_on_at)
                )
            ).scalars()
            officers = tuple(names.all())
        return Staffing(jid, len(officers), self.minimum, officers)

    async def count_open(self) -> int:
        async with self._sessionmaker() as session:
            n = await session.scalar(
                select(func.count())
                .select_from(DutySignOn)
                .where(DutySignOn.signed_off_at.is_(None))
            )
            return int(n or 0)

    async def _announce(self, jurisdiction_id: str) -> None:
        if jurisdiction_id != self.staffed_id:
            return
        await self.publish_staffing()

    async def publish_staffing(self) -> Staffing:
        staffing = await self.staffing()
        if staffing.warning:
            _LOGGER.warning(
                "staffing: %s on duty at %s, minimum %s",
                staffing.on_duty,
                staffing.jurisdiction_id,
                staffing.minimum,
            )
        await self._bus.notify(TOPIC, STAFFING_EVENT, staffing.as_json())
        return staffing
