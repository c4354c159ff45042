"""Suppressions (a hospital stay, an approved exception): time-bound and reasoned.

A suppressed subject's alarms are still recorded — with state ``suppressed`` — so the record
shows what happened, but they are never raised to the duty queue. Suppressions are few, so
every instance keeps the active ones in memory and reloads them from the database
periodically (another instance may have created one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import Suppression


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
