"""The visit records staff keep: a prison's inmates and their relatives, with each relative's
photo and proof of relationship, and the verification that lets them book.

A relative is registered ``pending`` (the rules in force ask for real-person verification
and proof of relationship at the first application); visit staff attach the photo (the face
they compare with the live video before admitting) and the proof (a household register page,
a certificate), then verify, and only then may the relative be booked. A ban ends on its date
by itself; staff may also lift it early, with a reason. Every change is on the audit chain
with before and after.

The ID number is checked as a resident ID (18 characters, a real birth date, the GB 11643
check digit: a typo is caught at the desk, not at the gate) and kept only as SHA-256 plus its
last four digits. Files go to the content-addressed evidence store (so backups carry them);
the relative's row names the stored file.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center import audit
from center.authz import Principal
from center.clock import Clock
from center.errors import Conflict, NotFound, UnsupportedMediaType, ValidationFailed
from center.identity import sha256_hex
from center.visits.models import Inmate, Prison, Relative, RelativeStatus
from center.visits.service import VisitService

FileKind = Literal["photo", "proof"]
_PHOTO_TYPES: Final = frozenset({"image/jpeg", "image/png"})
_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK: Final = "10X98765432"


def id_number_problem(text: str) -> str | None:
    """Why ``text`` is not a resident ID number (GB 11643), or None when it is one."""
    if len(text) != 18 or not text[:17].isascii() or not text[:17].isdigit():
        return "must be 18 characters: 17 digits and a digit or X"
    last = text[17].upper()
    if not (last.isdigit() or last == "X"):
        return "must end with a digit or X"
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return "holds no valid birth date (characters 7–14)"
    if born.year < 1900:
        return "holds no valid birth date (characters 7–14)"
    total = sum(int(d) * w for d, w in zip(text[:17], _WEIGHTS, strict=True))
    if _CHECK[total % 11] != last:
        return "has a wrong check digit (a typing error?)"
    return None


class RelativeRecord(msgspec.Struct):
    """A relative as staff see it: never the ID number, only its last four digits."""

    id: int
    inmate_id: str
    name: str
    relationship: str
    id_last4: str
    phone: str
    status: str
    """``pending`` (not yet verified), ``approved`` or ``banned``."""
    banned_until: datetime | None
    has_photo: bool
    has_proof: bool
    bookable: bool
    """Verified and not banned (a ban that has ended no longer counts)."""
    photo_url: str | None
    proof_url: str | None


class InmateRecord(msgspec.Struct):
    id: str
    prison_id: str
    prison_name: str
    name: str
    relatives: list[RelativeRecord]


RULE_FIELDS: Final = (
    "visit_minutes",
    "visit_max_relatives",
    "visit_monthly_quota",
    "visit_lead_working_days",
)


class PrisonRules(msgspec.Struct):
    """A prison's visit rules: ``own`` what the prison has set (None: the setting), and the
    ``effective`` values bookings follow."""

    id: str
    name: str
    own: dict[str, int | None]
    effective: dict[str, int]


class ChunkSource(Protocol):
    async def read_chunk(self, size: int = ...) -> bytes: ...


class Stored(Protocol):
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def content_type(self) -> str: ...
    @property
    def relpath(self) -> str: ...


class FileStore(Protocol):
    """What the records need of the evidence store (``alerts.evidence.EvidenceStore``):
    content-checked, size-limited, content-addressed files under ``root``."""

    root: Path

    async def store(self, source: ChunkSource) -> Stored: ...


class VisitRecords:
    """Inmates and relatives of the prisons a member of visit staff works for."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        visits: VisitService,
        files: FileStore,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._visits = visits
        self._files = files

    def __repr__(self) -> str:
        return f"<VisitRecords files={self._files.root}>"

    # -- reading --------------------------------------------------------------------------

    async def inmates(
        self, principal: Principal, *, prison_id: str | None = None, q: str = "", limit: int = 100
    ) -> list[InmateRecord]:
        """The inmates of the caller's prisons (one prison with ``prison_id``), with their
        relatives; ``q`` matches the inmate's id or name, or a relative's name."""
        async with self._sessionmaker() as session:
            prisons = await self._visits.prisons_of(session, principal)
            stmt = select(Inmate, Prison.name).join(Prison, Prison.id == Inmate.prison_id)
            if prisons is not None:
                stmt = stmt.where(Inmate.prison_id.in_(sorted(prisons)))
            if prison_id is not None:
                stmt = stmt.where(Inmate.prison_id == prison_id)
            if q:
                like = f"%{q}%"
                by_relative = select(Relative.inmate_id).where(Relative.name.like(like))
                stmt = stmt.where(
                    or_(Inmate.id.like(like), Inmate.name.like(like), Inmate.id.in_(by_relative))
                )
            rows = (await session.execute(stmt.order_by(Inmate.id).limit(limit))).all()
            ids = [inmate.id for inmate, _ in rows]
            relatives = (
                await session.scalars(
                    select(Relative)
                    .where(Relative.inmate_id.in_(ids))
                    .order_by(Relative.inmate_id, Relative.id)
                )
            ).all()
            now = self._clock.now()
            by_inmate: dict[str, list[RelativeRecord]] = {i: [] for i in ids}
            for rel in relatives:
                by_inmate[rel.inmate_id].append(self._record(rel, now))
            return [
                InmateRecord(inmate.id, inmate.prison_id, pname, inmate.name, by_inmate[inmate.id])
                for inmate, pname in rows
            ]

    async def relative(self, principal: Principal, relative_id: int) -> RelativeRecord:
        async with self._sessionmaker() as session:
            rel = await self._visible(session, principal, relative_id)
            return self._record(rel, self._clock.now())

    async def open_file(self, principal: Principal, relative_id: int, kind: FileKind) -> Path:
        """The stored photo or proof, for staff of the prison."""
        async with self._sessionmaker() as session:
            rel = await self._visible(session, principal, relative_id)
        rel_path = rel.photo_path if kind == "photo" else rel.proof_path
        if not rel_path:
            raise NotFound(f"no {kind} on file for this relative")
        path = self._files.root / rel_path
        if not path.is_file():
            raise NotFound(f"the {kind} file is missing from the store")
        return path

    # -- changes --------------------------------------------------------------------------

    async def register(
        self,
        principal: Principal,
        inmate_id: str,
        *,
        name: str,
        relationship: str,
        id_number: str,
        phone: str,
    ) -> RelativeRecord:
        """A new relative of ``inmate_id``, ``pending`` until verified."""
        id_number = id_number.strip().upper()
        problem = id_number_problem(id_number)
        if problem is not None:
            raise ValidationFailed.of({"id_number": f"'id_number' {problem}"})
        async with self._sessionmaker() as session:
            inmate = await self._inmate(session, principal, inmate_id)
            digest = sha256_hex(id_number)
            taken = await session.scalar(
                select(func.count())
                .select_from(Relative)
                .where(Relative.inmate_id == inmate.id, Relative.id_number_hash == digest)
            )
            if taken:
                raise Conflict(
                    "this ID number is already registered for this inmate",
                    details={"field": "id_number"},
                )
            rel = Relative(
                inmate_id=inmate.id,
                name=name,
                relationship=relationship,
                id_number_hash=digest,
                id_last4=id_number[-4:],
                phone=phone,
                status=RelativeStatus.PENDING,
            )
            session.add(rel)
            await session.flush()
            await self._audit(
                session,
                principal,
                "visit.relative.register",
                rel,
                after=self._audit_view(rel),
            )
            await session.commit()
            return self._record(rel, self._clock.now())

    async def attach(
        self, principal: Principal, relative_id: int, kind: FileKind, source: ChunkSource
    ) -> RelativeRecord:
        """Store the photo (JPEG or PNG) or the proof (JPEG, PNG or PDF) of a relative."""
        async with self._sessionmaker() as session:
            await self._visible(session, principal, relative_id)
        stored = await self._files.store(source)
        if kind == "photo" and stored.content_type not in _PHOTO_TYPES:
            raise UnsupportedMediaType("the photo must be a JPEG or PNG image")
        async with self._sessionmaker() as session:
            rel = await self._visible(session, principal, relative_id)
            before = rel.photo_path if kind == "photo" else rel.proof_path
            if kind == "photo":
                rel.photo_path = stored.relpath
            else:
                rel.proof_path = stored.relpath
            await self._audit(
                session,
                principal,
                f"visit.relative.{kind}",
                rel,
                before={"sha256": Path(before).name if before else None},
                after={
                    "sha256": stored.sha256,
                    "size": stored.size,
                    "content_type": stored.content_type,
                },
            )
            await session.commit()
            return self._record(rel, self._clock.now())

    async def verify(self, principal: Principal, relative_id: int) -> RelativeRecord:
        """Identity and relationship checked: the relative may be booked from now on."""
        async with self._sessionmaker() as session:
            rel = await self._visible(session, principal, relative_id)
            if rel.status != RelativeStatus.PENDING:
                raise Conflict(
                    f"the relative is {rel.status}, not pending verification",
                    details={"status": rel.status},
                )
            missing = [
                k for k, v in (("photo", rel.photo_path), ("proof", rel.proof_path)) if not v
            ]
            if missing:
                raise Conflict(
                    "attach the "
                    + " and the ".join(
                        "photo" if m == "photo" else "proof of relationship" for m in missing
                    )
                    + " before verifying",
                    details={"missing": missing},
                )
            before = self._audit_view(rel)
            rel.status = RelativeStatus.APPROVED
            await self._audit(
                session,
                principal,
                "visit.relative.verify",
                rel,
                before=before,
                after=self._audit_view(rel),
            )
            await session.commit()
            return self._record(rel, self._clock.now())

    async def lift_ban(self, principal: Principal, relative_id: int, reason: str) -> RelativeRecord:
        """End a ban before its date (an appeal upheld, a ban set by mistake)."""
        async with self._sessionmaker() as session:
            rel = await self._visible(session, principal, relative_id)
            if rel.status != RelativeStatus.BANNED:
                raise Conflict(
                    f"the relative is {rel.status}, not banned", details={"status": rel.status}
                )
            before = self._audit_view(rel)
            rel.status = RelativeStatus.APPROVED
            rel.banned_until = None
            await self._audit(
                session,
                principal,
                "visit.relative.unban",
                rel,
                before=before,
                after=self._audit_view(rel),
                reason=reason,
            )
            await session.commit()
            return self._record(rel, self._clock.now())

    # -- prisons' rules -------------------------------------------------------------------

    async def prisons(self, principal: Principal) -> list[PrisonRules]:
        async with self._sessionmaker() as session:
            visible = await self._visits.prisons_of(session, principal)
            stmt = select(Prison).order_by(Prison.id)
            if visible is not None:
                stmt = stmt.where(Prison.id.in_(sorted(visible)))
            return [self._rules_of(p) for p in await session.scalars(stmt)]

    async def set_rules(
        self, principal: Principal, prison_id: str, changes: dict[str, int | None]
    ) -> PrisonRules:
        """Set (a number) or clear (None: back to the setting) the named rules; bookings
        from now on follow them, booked visits keep the length they were booked with."""
        unknown = set(changes) - set(RULE_FIELDS)
        if unknown:
            raise ValidationFailed.of({sorted(unknown)[0]: "is not a visit rule"})
        async with self._sessionmaker() as session:
            visible = await self._visits.prisons_of(session, principal)
            prison = await session.get(Prison, prison_id)
            if prison is None or (visible is not None and prison_id not in visible):
                raise NotFound("no such prison of yours")
            before = {name: getattr(prison, name) for name in RULE_FIELDS}
            for name, value in changes.items():
                setattr(prison, name, value)
            after = {name: getattr(prison, name) for name in RULE_FIELDS}
            if after != before:
                await audit.record(
                    session,
                    actor=principal.actor,
                    action="visit.prison.rules",
                    target_type="prison",
                    target_id=prison.id,
                    details={"before": before, "after": after},
                    at=self._clock.now(),
                )
            await session.commit()
            return self._rules_of(prison)

    def _rules_of(self, prison: Prison) -> PrisonRules:
        rules = self._visits.rules_for(prison)
        return PrisonRules(
            id=prison.id,
            name=prison.name,
            own={name: getattr(prison, name) for name in RULE_FIELDS},
            effective={
                "visit_minutes": rules.minutes,
                "visit_max_relatives": rules.max_relatives,
                "visit_monthly_quota": rules.monthly_quota,
                "visit_lead_working_days": rules.lead_working_days,
            },
        )

    # -- helpers --------------------------------------------------------------------------

    async def _inmate(self, session: AsyncSession, principal: Principal, inmate_id: str) -> Inmate:
        inmate = await session.get(Inmate, inmate_id)
        prisons = await self._visits.prisons_of(session, principal)
        if inmate is None or (prisons is not None and inmate.prison_id not in prisons):
            raise NotFound("no such inmate in your prison")
        return inmate

    async def _visible(
        self, session: AsyncSession, principal: Principal, relative_id: int
    ) -> Relative:
        rel = await session.get(Relative, relative_id)
        if rel is None:
            raise NotFound("no such relative in your prison")
        try:
            await self._inmate(session, principal, rel.inmate_id)
        except NotFound:
            raise NotFound("no such relative in your prison") from None
        return rel

    def _record(self, rel: Relative, now: datetime) -> RelativeRecord:
        banned = rel.status == RelativeStatus.BANNED and (
            rel.banned_until is None or rel.banned_until > now
        )
        return RelativeRecord(
            id=rel.id,
            inmate_id=rel.inmate_id,
            name=rel.name,
            relationship=rel.relationship,
            id_last4=rel.id_last4,
            phone=rel.phone,
            status=rel.status,
            banned_until=rel.banned_until,
            has_photo=bool(rel.photo_path),
            has_proof=bool(rel.proof_path),
            bookable=rel.status != RelativeStatus.PENDING and not banned,
            photo_url=f"/api/v1/visits/relatives/{rel.id}/photo" if rel.photo_path else None,
            proof_url=f"/api/v1/visits/relatives/{rel.id}/proof" if rel.proof_path else None,
        )

    @staticmethod
    def _audit_view(rel: Relative) -> dict[str, Any]:
        return {
            "name": rel.name,
            "relationship": rel.relationship,
            "id_last4": rel.id_last4,
            "status": rel.status,
            "banned_until": rel.banned_until.isoformat() if rel.banned_until else None,
        }

    async def _audit(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        rel: Relative,
        **details: Any,
    ) -> None:
        await audit.record(
            session,
            actor=principal.actor,
            action=action,
            target_type="relative",
            target_id=str(rel.id),
            details={"inmate_id": rel.inmate_id, **details},
            at=self._clock.now(),
        )
