"""Suppressions (a hospital stay, an approved exception): time-bound and reasoned.

A suppressed subject's alarms are still recorded — with state ``suppressed`` — so the record
shows what happened, but they are never raised to the duty queue. Suppressions are few, so
every instance keeps the active ones in memory and reloads them from the database
periodically (another instance may have created one).

:func:`create_suppression` is the one way a suppression comes to be (the HTTP handler only
decodes and calls it): it checks what a request model cannot (the end in the future and after
the start, at most :data:`MAX_SUPPRESSION` from now), writes the row and its audit entry in
one transaction and puts it in the engine's cache at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.models import AlarmKind, Suppression
from alerts.timebound import ends_after, invalid, recent, storable, store_audited
from center import audit
from center.clock import Clock

MAX_SUPPRESSION: Final = timedelta(days=90)
REASON_MAX: Final = Suppression.reason.property.columns[0].type.length


@dataclass(frozen=True, slots=True)
class ActiveSuppression:
    id: int
    subject_id: str
    kinds: frozenset[str]
    starts: float
    until: float

    def covers(self, kind: str, ts: float) -> bool:
        return self.starts <= ts < self.until and (not self.kinds or kind in self.kinds)


def parse_kinds(raw: str) -> frozenset[str]:
    return frozenset(k.strip() for k in raw.split(",") if k.strip())


class SuppressionCache:
    def __init__(self) -> None:
        self._by_subject: dict[str, list[ActiveSuppression]] = {}
        self._added_during_reload: list[Suppression] | None = None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_subject.values())

    def add(self, row: Suppression) -> None:
        if self._added_during_reload is not None:
            self._added_during_reload.append(row)
        if row.revoked_at is not None:
            return
        item = ActiveSuppression(
            row.id,
            row.subject_id,
            parse_kinds(row.kinds),
            row.starts_at.timestamp(),
            row.until.timestamp(),
        )
        items = [s for s in self._by_subject.get(row.subject_id, []) if s.id != row.id]
        items.append(item)
        self._by_subject[row.subject_id] = items

    def remove(self, suppression_id: int, subject_id: str) -> None:
        items = [s for s in self._by_subject.get(subject_id, []) if s.id != suppression_id]
        if items:
            self._by_subject[subject_id] = items
        else:
            self._by_subject.pop(subject_id, None)

    def active_for(self, subject_id: str, kind: str, ts: float) -> ActiveSuppression | None:
        for s in self._by_subject.get(subject_id, ()):
            if s.covers(kind, ts):
                return s
        return None

    async def reload(self, session: AsyncSession, now: datetime) -> None:
        """Re-read the active suppressions; ones added here meanwhile are kept."""
        self._added_during_reload = []
        try:
            rows = (
                (
                    await session.execute(
                        select(Suppression).where(
                            Suppression.until > now, Suppression.revoked_at.is_(None)
                        )
                    )
                )
                .scalars()
                .all()
            )
        finally:
            added, self._added_during_reload = self._added_during_reload, None
        self._by_subject = {}
        for row in [*rows, *added]:
            self.add(row)


@dataclass(frozen=True, slots=True)
class NewSuppression:
    subject_id: str
    reason: str
    until: datetime
    starts_at: datetime | None = None  # None: now
    kinds: Collection[AlarmKind] = ()  # empty: every kind


class SuppressionHost(Protocol):
    """What :func:`create_suppression` needs of the alarm engine."""

    clock: Clock
    sessionmaker: async_sessionmaker[AsyncSession]

    def suppression_added(self, row: Suppression) -> None: ...

    def suppression_removed(self, row: Suppression) -> None: ...


async def create_suppression(
    host: SuppressionHost, new: NewSuppression, *, actor: str
) -> Suppression:
    """Record a suppression (audited ``suppression.create``) and apply it at once."""
    now = host.clock.now()
    starts_at = storable(new.starts_at or now, "starts_at")
    until = storable(new.until, "until")
    ends_after(starts_at, until, now, "until")
    if until - now > MAX_SUPPRESSION:
        raise invalid("until", f"a suppression lasts at most {MAX_SUPPRESSION.days} days")
    kinds = sorted({str(k) for k in new.kinds})
    reason = new.reason.strip()
    row = await store_audited(
        host.sessionmaker,
        Suppression(
            subject_id=new.subject_id,
            kinds=",".join(kinds),
            reason=reason,
            starts_at=starts_at,
            until=until,
            created_by=actor,
            created_at=now,
        ),
        actor=actor,
        action="suppression.create",
        subject_id=new.subject_id,
        details={
            "reason": reason,
            "kinds": kinds,
            "starts_at": starts_at.isoformat(),
            "until": until.isoformat(),
        },
        id_key="suppression_id",
        now=now,
    )
    host.suppression_added(row)
    return row


async def recent_suppressions(
    sessionmaker: async_sessionmaker[AsyncSession], subject_id: str
) -> Sequence[Suppression]:
    """The subject's latest suppressions (revoked ones too), newest first."""
    return await recent(sessionmaker, Suppression, subject_id)


async def revoke_suppression(
    host: SuppressionHost, suppression_id: int, *, actor: str
) -> Suppression | None:
    """End a suppression now (audited ``suppression.revoke`` with before and after): the
    subject's alarms are raised again from the next one. ``None`` for an unknown id; a
    revoked one is answered as it is (idempotent). Other instances drop it at their next
    reload (within a minute)."""
    now = host.clock.now()
    async with host.sessionmaker() as session:
        row = await session.get(Suppression, suppression_id)
        if row is None or row.revoked_at is not None:
            return row
        row.revoked_at = now
        await audit.record(
            session,
            actor=actor,
            action="suppression.revoke",
            target_type="subject",
            target_id=row.subject_id,
            details={
                "suppression_id": row.id,
                "before": {"revoked_at": None, "until": row.until.isoformat()},
                "after": {"revoked_at": now.isoformat(), "until": row.until.isoformat()},
            },
            at=now,
        )
        await session.commit()
    host.suppression_removed(row)
    return row


async def suppressions_for_admin(
    sessionmaker: async_sessionmaker[AsyncSession], limit: int = 500
) -> Sequence[Suppression]:
    """Current and future suppressions first, then the latest ended ones."""
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Suppression).order_by(Suppression.until.desc()).limit(limit)
        )
        return list(rows)
