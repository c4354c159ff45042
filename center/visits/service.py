"""Booking, approval, cancellation and join codes of visits (the record and its rules).

Rules the families and the prisons rely on (settings in :class:`VisitRules`):

* **A refusal says what to change.** Lead time (working days), the inmate's monthly quota,
  a relative's pending verification or ban (with its end date), the inmate's own other visit,
  the prison's terminals and the visit point's rooms are checked at booking; each breach is a
  409 ``booking_refused`` whose ``details.rule`` names the rule and whose message names the
  way out (the earliest day, the ban's end, another time).
* **Cancelled and refused visits hold nothing**: only :data:`ACTIVE_STATES` count for the
  slot and the quota, so a cancellation frees the slot at once.
* **Emergency visits** (a dying relative) skip the lead time but need two approvals by two
  different staff members.
* **Join codes** (6 digits, one per relative) are made at approval and shown once; only
  their SHA-256 is kept. A code works from ``visit_join_early_minutes`` before the slot to
  its end (else 403 ``code_not_valid_now``) and once (else 409 ``code_used``): the single
  use is an ``UPDATE … WHERE used_at IS NULL``, so two phones racing get one session.
* **Scope**: a ``visit_staff`` login works for the prisons linked to it
  (:class:`~center.visits.models.PrisonStaff`); other prisons' visits are 404, as unknown
  ones. Admin and duty staff of the city see every prison.

Every staff action (book, approve, refuse, cancel) and every code exchange is on the audit
chain in the same transaction as the change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center import audit
from center.authz import Action, Principal, PrincipalKind
from center.bus import Bus
from center.clock import Clock
from center.errors import (
    BookingRefused,
    CodeNotValidNow,
    CodeUsed,
    Conflict,
    InvalidCredentials,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from center.identity import sha256_hex
from center.models import Role
from center.timers import TimerService
from center.topics import Topic
from center.visits.figures import MonthFigures, month_figures
from center.visits.models import (
    ACTIVE_STATES,
    Inmate,
    ItemType,
    NoticeKind,
    Prison,
    PrisonStaff,
    PrisonTerminal,
    Relative,
    RelativeStatus,
    Visit,
    VisitItem,
    VisitNotice,
    VisitOutcome,
    VisitParty,
    VisitPoint,
    VisitState,
)
from center.visits.ports import RoomParty, VisitNotices, VisitRooms
from center.visits.quality import side_grades, worst_grade
from center.visits.rules import VisitRules, earliest_day, join_window, month_of
from center.visits.view import (
    JoinCodeOut,
    JoinOut,
    VisitOut,
    VisitPage,
    VisitQualityOut,
    bus_data,
    visit_out,
)

_LOGGER = logging.getLogger(__name__)

EVENT_STATE: Final = "visit.state"
GUEST_TOKEN_PREFIX: Final = "vg_"
"""Marks a relative's guest session token (a bearer token like ``ck_`` keys, ``dt_`` tokens)."""
NO_SHOW: Final = "visit.no_show"
_ALL_PRISONS: Final = frozenset({Role.ADMIN, Role.DUTY})
_CODE_DIGITS: Final = 6
JOINABLE: Final = frozenset({VisitState.APPROVED, VisitState.WAITING, VisitState.LIVE})
CANCELLABLE: Final = frozenset({VisitState.REQUESTED, VisitState.APPROVED, VisitState.WAITING})


def relative_key(party_id: int) -> str:
    """The room principal of a relative's guest session (a party of the visit's room)."""
    return f"guest:party:{party_id}"


def terminal_key(credential_id: str) -> str:
    """The room principal of the prison terminal's device token: the inmate's side."""
    return f"device:{credential_id}"


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed.of({field: problem})


def _day_text(day: date) -> str:
    return day.isoformat()


class VisitService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        rules: VisitRules,
        timers: TimerService,
        bus: Bus,
        rooms: VisitRooms,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.rules = rules
        self.timers = timers
        self.bus = bus
        self.rooms = rooms
        self.notices: VisitNotices | None = None
        """The relatives' notices (approved, refused, cancelled, reminder); set by the app."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self._sessionmaker

    @property
    def clock(self) -> Clock:
        return self._clock

    def __repr__(self) -> str:
        return f"<VisitService {self.rules.minutes}min quota={self.rules.monthly_quota}>"

    def rules_for(self, prison: Prison | None) -> VisitRules:
        """The settings' rules with ``prison``'s own where it has set them."""
        if prison is None:
            return self.rules
        base = self.rules

        def own(value: int | None, default: int) -> int:
            return default if value is None else value

        return dataclasses.replace(
            base,
            minutes=own(prison.visit_minutes, base.minutes),
            max_relatives=own(prison.visit_max_relatives, base.max_relatives),
            monthly_quota=own(prison.visit_monthly_quota, base.monthly_quota),
            lead_working_days=own(prison.visit_lead_working_days, base.lead_working_days),
        )

    # -- scope ----------------------------------------------------------------------------

    async def prisons_of(
        self, session: AsyncSession, principal: Principal
    ) -> frozenset[str] | None:
        """The prisons ``principal`` works for; None: every prison."""
        if principal.role in _ALL_PRISONS:
            return None
        if principal.role != Role.VISIT_STAFF:
            return frozenset()
        if principal.kind == PrincipalKind.DEVICE:  # a prison's visit terminal
            rows = await session.scalars(
                select(PrisonTerminal.prison_id).where(PrisonTerminal.credential_id == principal.id)
            )
            return frozenset(rows)
        if principal.kind != PrincipalKind.USER:
            return frozenset()
        rows = await session.scalars(
            select(PrisonStaff.prison_id).where(PrisonStaff.user_id == int(principal.id))
        )
        return frozenset(rows)

    async def visible(self, session: AsyncSession, principal: Principal, visit_id: int) -> Visit:
        visit = await session.get(Visit, visit_id)
        if principal.role == Role.FAMILY:
            if visit is None or f"visit:{visit_id}" not in principal.grants:
                raise NotFound("no such visit")
            return visit
        prisons = await self.prisons_of(session, principal)
        if visit is None or (prisons is not None and visit.prison_id not in prisons):
            raise NotFound("no such visit in your prison")
        return visit

    async def out(
        self, session: AsyncSession, visit: Visit, join_codes: list[JoinCodeOut] | None = None
    ) -> VisitOut:
        inmate = await session.get(Inmate, visit.inmate_id)
        parties = (
            await session.execute(
                select(VisitParty, Relative)
                .join(Relative, Relative.id == VisitParty.relative_id)
                .where(VisitParty.visit_id == visit.id)
                .order_by(VisitParty.id)
            )
        ).all()
        items = list(
            await session.scalars(
                select(VisitItem).where(VisitItem.visit_id == visit.id).order_by(VisitItem.id)
            )
        )
        notices = list(
            await session.scalars(
                select(VisitNotice).where(VisitNotice.visit_id == visit.id).order_by(VisitNotice.id)
            )
        )
        return visit_out(visit, inmate, [(p, r) for p, r in parties], items, join_codes, notices)

    async def item(
        self, session: AsyncSession, visit: Visit, type_: ItemType, actor: str, **data: Any
    ) -> None:
        session.add(
            VisitItem(
                visit_id=visit.id,
                at=self._clock.now(),
                type=type_,
                actor=actor,
                data=json.dumps(data, ensure_ascii=False, sort_keys=True, default=str),
            )
        )
        await session.flush()

    async def sides(self, session: AsyncSession, visit: Visit) -> dict[str, frozenset[str]]:
        """The room principals of each side: the relatives', and the prison terminal's."""
        parties = await session.scalars(
            select(VisitParty.id).where(VisitParty.visit_id == visit.id)
        )
        terminal = await session.get(PrisonTerminal, visit.terminal_id)
        inmate = (
            {terminal_key(terminal.credential_id)} if terminal and terminal.credential_id else set()
        )
        return {
            "relatives": frozenset(relative_key(p) for p in parties),
            "inmate": frozenset(inmate),
        }

    async def announce(self, out: VisitOut, *extra: tuple[str, dict[str, Any]]) -> None:
        """After the commit: the visit's state, then any extra events (warnings, texts)."""
        await self.bus.notify(Topic.VISITS, EVENT_STATE, bus_data(out))
        for type_, data in extra:
            await self.bus.notify(
                Topic.VISITS, type_, {"visit_id": out.id, "prison_id": out.prison_id, **data}
            )

    async def move(self, session: AsyncSession, visit: Visit, **values: Any) -> None:
        """Versioned update: a concurrent change to the same visit makes this one a 409."""
        values.setdefault("updated_at", self._clock.now())
        result = await session.execute(
            update(Visit)
            .where(Visit.id == visit.id, Visit.version == visit.version)
            .values(version=visit.version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            raise Conflict("the visit changed meanwhile; reload it")
        await session.refresh(visit)

    async def audit_entry(
        self, session: AsyncSession, actor: str, action: str, visit: Visit, **details: Any
    ) -> None:
        await audit.record(
            session,
            actor=actor,
            action=action,
            target_type="visit",
            target_id=str(visit.id),
            details=details,
            at=self._clock.now(),
        )

    # -- reading --------------------------------------------------------------------------

    async def get(self, principal: Principal, visit_id: int) -> VisitOut:
        async with self._sessionmaker() as session:
            return await self.out(session, await self.visible(session, principal, visit_id))

    async def quality(self, principal: Principal, visit_id: int) -> VisitQualityOut:
        """Each side's grade now (the room open here) or the record's medians (ended)."""
        async with self._sessionmaker() as session:
            visit = await self.visible(session, principal, visit_id)
            if visit.state not in (VisitState.WAITING, VisitState.LIVE) or not visit.room_id:
                out = await self.out(session, visit)
                return VisitQualityOut(
                    visit_id=visit.id,
                    state=visit.state,
                    final=True,
                    relatives=out.quality.relatives,
                    inmate=out.quality.inmate,
                )
            sides = await self.sides(session, visit)
        latest = self.rooms.latest_grades(visit.room_id)
        by_side = side_grades({k: [g] for k, g in latest.items()}, sides)
        return VisitQualityOut(
            visit_id=visit.id,
            state=visit.state,
            final=False,
            relatives=worst_grade(by_side["relatives"]),
            inmate=worst_grade(by_side["inmate"]),
        )

    async def find(
        self,
        principal: Principal,
        *,
        prison_id: str | None = None,
        day: date | None = None,
        state: VisitState | None = None,
        limit: int = 100,
    ) -> VisitPage:
        """Newest slot first; ``day`` is a local day of the center's time zone."""
        async with self._sessionmaker() as session:
            prisons = await self.prisons_of(session, principal)
            conds: list[Any] = []
            if prison_id is not None:
                if prisons is not None and prison_id not in prisons:
                    raise NotFound("no such prison among yours", details={"field": "prison_id"})
                conds.append(Visit.prison_id == prison_id)
            elif prisons is not None:
                conds.append(Visit.prison_id.in_(sorted(prisons)))
            if day is not None:
                start = datetime.combine(day, time(0), self.rules.tz)
                conds += [Visit.starts_at >= start, Visit.starts_at < start + timedelta(days=1)]
            if state is not None:
                conds.append(Visit.state == state)
            total = await session.scalar(select(func.count()).select_from(Visit).where(*conds))
            rows = await session.scalars(
                select(Visit)
                .where(*conds)
                .order_by(Visit.starts_at.desc(), Visit.id.desc())
                .limit(limit)
            )
            items = [await self.out(session, v) for v in rows]
            return VisitPage(items=items, total=int(total or 0))

    async def figures(self, principal: Principal, month: str) -> MonthFigures:
        """The month's visits (by slot, local) per prison and visit point, in scope."""
        async with self._sessionmaker() as session:
            prisons = await self.prisons_of(session, principal)
            conds: list[Any] = [Visit.month == month]
            if prisons is not None:
                conds.append(Visit.prison_id.in_(sorted(prisons)))
            rows = (
                await session.execute(
                    select(Visit.id, Visit.prison_id, Visit.visit_point_id, Visit.outcome).where(
                        *conds
                    )
                )
            ).all()
            graded = await session.execute(
                select(VisitItem.visit_id, VisitItem.data).where(
                    VisitItem.type == ItemType.QUALITY,
                    VisitItem.visit_id.in_(select(Visit.id).where(*conds)),
                )
            )
            quality = {visit_id: json.loads(data) for visit_id, data in graded.all()}
        return month_figures(
            month,
            [(p, v, o) for _, p, v, o in rows],
            [quality.get(i, {}) for i, _, _, _ in rows],
        )

    async def under_way(self) -> list[VisitOut]:
        """Visits waiting or live, every prison (the ``visits`` topic filters them)."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(Visit)
                .where(Visit.state.in_([VisitState.WAITING, VisitState.LIVE]))
                .order_by(Visit.starts_at)
            )
            return [await self.out(session, v) for v in rows]

    # -- booking --------------------------------------------------------------------------

    async def book(
        self,
        principal: Principal,
        *,
        inmate_id: str,
        relative_ids: Sequence[int],
        starts_at: datetime,
        visit_point_id: str | None = None,
        privileged: bool = False,
        emergency: bool = False,
    ) -> VisitOut:
        async def scope(session: AsyncSession) -> frozenset[str] | None:
            return await self.prisons_of(session, principal)

        return await self.book_as(
            principal.actor,
            scope,
            "visit.book",
            inmate_id=inmate_id,
            relative_ids=relative_ids,
            starts_at=starts_at,
            visit_point_id=visit_point_id,
            privileged=privileged,
            emergency=emergency,
        )

    async def book_as(
        self,
        actor: str,
        scope: Callable[[AsyncSession], Awaitable[frozenset[str] | None]],
        action: str,
        *,
        inmate_id: str,
        relative_ids: Sequence[int],
        starts_at: datetime,
        visit_point_id: str | None = None,
        privileged: bool = False,
        emergency: bool = False,
    ) -> VisitOut:
        """Book for ``actor`` within the prisons ``scope`` names (None: every prison): the
        staff's booking and a relative's public request share every rule."""
        now = self._clock.now()
        if len(set(relative_ids)) != len(relative_ids):
            raise _invalid("relative_ids", "names a relative twice")
        if starts_at <= now:
            raise BookingRefused("in_past", "the time is already past; pick a later time")
        async with self._sessionmaker() as session:
            prisons = await scope(session)
            inmate = await session.get(Inmate, inmate_id)
            if inmate is None or (prisons is not None and inmate.prison_id not in prisons):
                raise NotFound("no such inmate in your prison", details={"field": "inmate_id"})
            rules = self.rules_for(await session.get(Prison, inmate.prison_id))
            if len(relative_ids) > rules.max_relatives:
                raise BookingRefused(
                    "max_relatives",
                    f"at most {rules.max_relatives} relatives per visit; book the others for "
                    "another visit",
                    max_relatives=rules.max_relatives,
                )
            ends_at = starts_at + timedelta(minutes=rules.minutes)
            relatives = list(
                await session.scalars(
                    select(Relative).where(
                        Relative.id.in_(list(relative_ids)), Relative.inmate_id == inmate_id
                    )
                )
            )
            if len(relatives) != len(relative_ids):
                raise NotFound(
                    "a relative is not registered for this inmate",
                    details={"field": "relative_ids"},
                )
            point: VisitPoint | None = None
            if visit_point_id is not None:
                point = await session.get(VisitPoint, visit_point_id)
                if point is None:
                    raise NotFound("no such visit point", details={"field": "visit_point_id"})
            if not emergency:
                first = earliest_day(now, rules)
                if starts_at.astimezone(rules.tz).date() < first:
                    raise BookingRefused(
                        "lead_time",
                        f"visits are booked {rules.lead_working_days} working days ahead; "
                        f"the earliest day is {_day_text(first)} (or ask for an emergency visit)",
                        earliest=_day_text(first),
                    )
            for rel in sorted(relatives, key=lambda r: r.id):
                self._check_relative(rel, starts_at)
            month = month_of(starts_at, rules.tz)
            if not privileged:
                await self._check_quota(session, inmate, month, rules.monthly_quota)
            busy = await self._overlapping(session, starts_at, ends_at)
            if any(v.inmate_id == inmate_id for v in busy):
                raise BookingRefused(
                    "inmate_busy",
                    "the inmate already has a visit at that time; pick another time",
                )
            terminals = list(
                await session.scalars(
                    select(PrisonTerminal)
                    .where(PrisonTerminal.prison_id == inmate.prison_id)
                    .order_by(PrisonTerminal.id)
                )
            )
            taken = {v.terminal_id for v in busy}
            free = [t for t in terminals if t.id not in taken]
            if not free:
                raise BookingRefused(
                    "terminal_busy",
                    "every visit terminal of the prison is booked at that time; pick another time",
                )
            if point is not None:
                used = sum(1 for v in busy if v.visit_point_id == point.id)
                if used >= point.capacity:
                    raise BookingRefused(
                        "point_full",
                        f"every room of {point.name} is booked at that time; pick another time "
                        "or another visit point",
                        capacity=point.capacity,
                    )
            visit = Visit(
                prison_id=inmate.prison_id,
                inmate_id=inmate.id,
                visit_point_id=point.id if point else None,
                terminal_id=free[0].id,
                starts_at=starts_at,
                ends_at=ends_at,
                month=month,
                state=VisitState.REQUESTED,
                privileged=privileged,
                emergency=emergency,
                version=1,
                booked_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(visit)
            await session.flush()
            for rel in relatives:
                session.add(VisitParty(visit_id=visit.id, relative_id=rel.id))
            await session.flush()
            await self.audit_entry(
                session,
                actor,
                action,
                visit,
                inmate_id=inmate.id,
                relative_ids=sorted(relative_ids),
                starts_at=starts_at.isoformat(),
                privileged=privileged,
                emergency=emergency,
            )
            out = await self.out(session, visit)
            await session.commit()
        await self.announce(out)
        _LOGGER.info("visit %s booked by %s for %s", visit.id, actor, starts_at)
        return out

    def _check_relative(self, rel: Relative, starts_at: datetime) -> None:
        if rel.status == RelativeStatus.PENDING:
            raise BookingRefused(
                "relative_pending",
                f"relative {rel.id} is not verified yet (identity and proof of relationship); "
                "book after the prison has approved them",
                relative_id=rel.id,
            )
        if rel.status == RelativeStatus.BANNED and (
            rel.banned_until is None or rel.banned_until > starts_at
        ):
            until = rel.banned_until.astimezone(self.rules.tz).date() if rel.banned_until else None
            raise BookingRefused(
                "banned",
                f"relative {rel.id} may not visit until "
                f"{_day_text(until) if until else 'further notice'}; book a day after the ban",
                relative_id=rel.id,
                banned_until=rel.banned_until.isoformat() if rel.banned_until else None,
            )

    async def _check_quota(
        self, session: AsyncSession, inmate: Inmate, month: str, quota: int
    ) -> None:
        held = await session.scalar(
            select(func.count())
            .select_from(Visit)
            .where(
                Visit.inmate_id == inmate.id,
                Visit.month == month,
                Visit.privileged.is_(False),
                (Visit.state.in_(sorted(ACTIVE_STATES)))
                | Visit.outcome.in_(
                    [VisitOutcome.COMPLETED, VisitOutcome.TERMINATED, VisitOutcome.NO_SHOW]
                ),
            )
        )
        if (held or 0) >= quota:
            raise BookingRefused(
                "monthly_quota",
                f"the inmate has had {quota} visit(s) in {month} already; book a day next month",
                month=month,
                quota=quota,
            )

    async def _overlapping(
        self, session: AsyncSession, starts_at: datetime, ends_at: datetime
    ) -> list[Visit]:
        return list(
            await session.scalars(
                select(Visit).where(
                    Visit.state.in_(sorted(ACTIVE_STATES)),
                    Visit.starts_at < ends_at,
                    Visit.ends_at > starts_at,
                )
            )
        )

    # -- approval -------------------------------------------------------------------------

    async def approve(self, principal: Principal, visit_id: int) -> VisitOut:
        """Approve; an emergency visit needs this twice, by two different staff members.
        The final approval answers the join codes, once."""
        now = self._clock.now()
        async with self._sessionmaker() as session:
            visit = await self.visible(session, principal, visit_id)
            if visit.state != VisitState.REQUESTED:
                raise InvalidTransition(f"a visit that is {visit.state} cannot be approved")
            if visit.emergency and not visit.approved_by:
                await self.move(session, visit, approved_by=principal.actor)
                await self.audit_entry(session, principal.actor, "visit.approve", visit, step=1)
                out = await self.out(session, visit)
                await session.commit()
                return out
            if visit.emergency and visit.approved_by == principal.actor:
                raise Conflict("an emergency visit needs a second approval by another staff member")
            if visit.ends_at <= now:
                raise InvalidTransition("the slot is over; book another time")
            fields = (
                {"second_approved_by": principal.actor}
                if visit.emergency
                else {"approved_by": principal.actor}
            )
            await self.move(session, visit, state=VisitState.APPROVED, **fields)
            codes = await self._issue_codes(session, visit, now)
            if self.notices is not None:
                await self.notices.approved(session, visit, codes)
            await self.timers.schedule(
                session,
                kind=NO_SHOW,
                key=f"visit:{visit.id}:no_show",
                ref=f"visit:{visit.id}",
                due_at=visit.starts_at + timedelta(minutes=self.rules.no_show_minutes),
            )
            await self.audit_entry(
                session,
                principal.actor,
                "visit.approve",
                visit,
                step=2 if visit.emergency else 1,
                relatives=[c.relative_id for c in codes],
            )
            out = await self.out(session, visit, codes)
            await session.commit()
        await self.announce(out)
        _LOGGER.info("visit %s approved by %s", visit_id, principal.actor)
        return out

    async def _issue_codes(
        self, session: AsyncSession, visit: Visit, now: datetime
    ) -> list[JoinCodeOut]:
        valid_from, valid_until = join_window(visit.starts_at, visit.ends_at, self.rules)
        out = []
        parties = list(
            await session.scalars(
                select(VisitParty).where(VisitParty.visit_id == visit.id).order_by(VisitParty.id)
            )
        )
        for party in parties:
            code = await self._fresh_code(session, now)
            token = secrets.token_urlsafe(24)
            party.code_hash = sha256_hex(code)
            party.token_hash = sha256_hex(token)
            party.valid_from = valid_from
            party.valid_until = valid_until
            await session.flush()
            out.append(
                JoinCodeOut(
                    relative_id=party.relative_id, join_code=code, join_url=f"/join/{token}"
                )
            )
        return out

    async def _fresh_code(self, session: AsyncSession, now: datetime) -> str:
        """A code no unused, still valid party holds (a code names one party at a time)."""
        while True:
            code = f"{secrets.randbelow(10**_CODE_DIGITS):0{_CODE_DIGITS}d}"
            clash = await session.scalar(
                select(func.count())
                .select_from(VisitParty)
                .where(VisitParty.code_hash == sha256_hex(code), VisitParty.valid_until > now)
            )
            if not clash:
                return code

    async def refuse(self, principal: Principal, visit_id: int, reason: str) -> VisitOut:
        return await self._end(
            principal,
            visit_id,
            frozenset({VisitState.REQUESTED}),
            VisitOutcome.REFUSED,
            reason,
            "visit.refuse",
        )

    async def cancel(self, principal: Principal, visit_id: int, reason: str) -> VisitOut:
        """Either side cancels before the visit is live; the slot is free at once."""
        return await self._end(
            principal, visit_id, CANCELLABLE, VisitOutcome.CANCELLED, reason, "visit.cancel"
        )

    async def _end(
        self,
        principal: Principal,
        visit_id: int,
        allowed: frozenset[VisitState],
        outcome: VisitOutcome,
        reason: str,
        action: str,
    ) -> VisitOut:
        async with self._sessionmaker() as session:
            visit = await self.visible(session, principal, visit_id)
            return await self.close_visit(
                session, visit, principal.actor, allowed, outcome, reason, action
            )

    async def close_visit(
        self,
        session: AsyncSession,
        visit: Visit,
        actor: str,
        allowed: frozenset[VisitState],
        outcome: VisitOutcome,
        reason: str,
        action: str,
    ) -> VisitOut:
        """End ``visit`` (loaded in ``session``) before it is live, commit, and tell: the
        relatives' notices, the room, the ``visits`` topic."""
        now = self._clock.now()
        visit_id = visit.id
        if visit.state not in allowed:
            raise InvalidTransition(f"a visit that is {visit.state} cannot be {outcome}")
        await self.move(
            session,
            visit,
            state=VisitState.ENDED,
            outcome=outcome,
            reason=reason,
            ended_at=now,
        )
        await self.audit_entry(session, actor, action, visit, reason=reason)
        await self.timers.cancel(session, ref=f"visit:{visit.id}")
        if self.notices is not None:
            await self.notices.ended(session, visit, NoticeKind(outcome), reason)
        out = await self.out(session, visit)
        await session.commit()
        if out.room_id:  # cancelled while waiting: nobody stays in the room
            await self.rooms.close(out.room_id, actor)
        await self.announce(out)
        _LOGGER.info("visit %s %s by %s", visit_id, outcome, actor)
        return out

    # -- joining --------------------------------------------------------------------------

    async def join(self, *, code: str | None = None, token: str | None = None) -> JoinOut:
        """Exchange a join code (or the link's token) for a guest session of that visit."""
        now = self._clock.now()
        secret = code if code is not None else token
        if not secret:
            raise InvalidCredentials("no such join code")
        column = VisitParty.code_hash if code is not None else VisitParty.token_hash
        async with self._sessionmaker() as session:
            party = await session.scalar(
                select(VisitParty)
                .where(column == sha256_hex(secret))
                .order_by(VisitParty.valid_until.desc(), VisitParty.id.desc())
                .limit(1)
            )
            if party is None or party.valid_from is None or party.valid_until is None:
                raise InvalidCredentials("no such join code")
            visit = await session.get(Visit, party.visit_id)
            assert visit is not None
            if not (party.valid_from <= now < party.valid_until) or visit.state not in JOINABLE:
                raise CodeNotValidNow(
                    "this code works from shortly before the visit until its end",
                    details={
                        "valid_from": party.valid_from.isoformat(),
                        "valid_until": party.valid_until.isoformat(),
                        "state": visit.state,
                    },
                )
            guest = GUEST_TOKEN_PREFIX + secrets.token_urlsafe(32)
            result = await session.execute(
                update(VisitParty)
                .where(VisitParty.id == party.id, VisitParty.used_at.is_(None))
                .values(used_at=now, guest_hash=sha256_hex(guest))
                .execution_options(synchronize_session=False)
            )
            if not getattr(result, "rowcount", 0):
                raise CodeUsed("this code was used already; ask the prison for help")
            await self.audit_entry(
                session,
                f"guest:relative{party.relative_id}",
                "visit.join",
                visit,
                relative_id=party.relative_id,
                by="code" if code is not None else "link",
            )
            relative_id = party.relative_id
            await session.commit()
        await self._open_room(visit.id, f"guest:relative{relative_id}")
        async with self._sessionmaker() as session:
            row = await session.get(Visit, visit.id)
            assert row is not None
            return JoinOut(
                visit_id=row.id,
                relative_id=relative_id,
                guest_token=guest,
                state=row.state,
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                room_id=row.room_id,
            )

    async def _open_room(self, visit_id: int, actor: str) -> None:
        """The first party in: the call room opens (unrecorded and unmonitored when
        privileged) and the visit waits for staff to admit it. The room opens outside any
        write transaction (the media core audits in its own); of two parties racing, the
        second's room is closed again."""
        async with self._sessionmaker() as session:
            visit = await session.get(Visit, visit_id)
            if visit is None or visit.state != VisitState.APPROVED:
                return
            parties = list(
                await session.scalars(select(VisitParty).where(VisitParty.visit_id == visit_id))
            )
            invitees = [RoomParty(relative_key(p.id), f"relative{p.relative_id}") for p in parties]
            terminal = await session.get(PrisonTerminal, visit.terminal_id)
            if terminal is not None and terminal.credential_id:
                invitees.append(RoomParty(terminal_key(terminal.credential_id), terminal.name))
            monitors: list[RoomParty] = []
            if not visit.privileged:
                staff = await session.scalars(
                    select(PrisonStaff.user_id).where(PrisonStaff.prison_id == visit.prison_id)
                )
                monitors = [RoomParty(f"user:{uid}", f"staff{uid}") for uid in staff]
            privileged = visit.privileged
        room_id = await self.rooms.open(
            visit_id,
            parties=invitees,
            monitors=monitors,
            record=not privileged,
            rejoin_grace_s=self.rules.rejoin_grace_s,
        )
        async with self._sessionmaker() as session:
            row = await session.get(Visit, visit_id)
            try:
                if row is None or row.state != VisitState.APPROVED:
                    raise Conflict("the visit moved on meanwhile")
                await self.move(session, row, state=VisitState.WAITING, room_id=room_id)
                await self.item(session, row, ItemType.WAITING, actor, room_id=room_id)
                out = await self.out(session, row)
                await session.commit()
            except Conflict:
                await session.rollback()
                await self.rooms.close(room_id, actor)
                return
        await self.announce(out)

    async def guest_principal(self, guest_token: str) -> Principal | None:
        """The family principal of a guest session: this one visit, while it is joinable."""
        async with self._sessionmaker() as session:
            party = await session.scalar(
                select(VisitParty).where(VisitParty.guest_hash == sha256_hex(guest_token))
            )
            if party is None:
                return None
            visit = await session.get(Visit, party.visit_id)
            if visit is None or visit.state not in JOINABLE:
                return None
        grants = {f"visit:{visit.id}", "visits", Action.ROOMS_CHECK}
        if visit.room_id:
            grants.add(f"room:{visit.room_id}")
        return Principal(
            kind=PrincipalKind.GUEST,
            id=f"party:{party.id}",
            name=f"relative{party.relative_id}",
            role=Role.FAMILY,
            jurisdiction=(),
            grants=frozenset(grants),
        )
