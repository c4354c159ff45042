"""Every active subject in compact per-subject arrays, shared by ingestion and the watcher.

A province has ~100,000 subjects and the watcher must judge all of them within a second of a
deadline; the benchmark loads a million. Per subject the directory keeps an index into
parallel arrays — plan index (``array('H')``), start of the last satisfied window
(``array('d')``), active flag — and references to interned street/district/level strings, so
a million subjects cost a few hundred megabytes, not gigabytes of objects.

Ingestion looks subjects up by id and refreshes from the database on a miss (a subject
created after start-up); a subject whose level or street changed is refreshed the same way
through :meth:`SubjectDirectory.refresh`.
"""

from __future__ import annotations

import logging
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.plans import PlanBook
from center.models import Subject

_LOGGER = logging.getLogger(__name__)
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    index: int
    id: str
    name: str
    level: str
    street_id: str
    district_id: str


class SubjectDirectory:
    def __init__(self, plans: PlanBook) -> None:
        self.plans = plans
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.levels: list[str] = []
        self.streets: list[str] = []
        self.districts: list[str] = []
        self.plan: array[int] = array("H")
        self.satisfied: array[float] = array("d")
        """POSIX start of the last window known satisfied (0: none)."""
        self.active = bytearray()

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"<SubjectDirectory {len(self.ids)} subjects>"

    def _put(
        self, sid: str, name: str, level: str, street: str, district: str, active: bool
    ) -> int:
        intern = sys.intern
        idx = self.index.get(sid)
        plan_idx = self.plans.plan_index(sid, level)
        if idx is None:
            idx = len(self.ids)
            self.index[sid] = idx
            self.ids.append(sid)
            self.names.append(name)
            self.levels.append(intern(level))
            self.streets.append(intern(street))
            self.districts.append(intern(district))
            self.plan.append(plan_idx)
            self.satisfied.append(0.0)
            self.active.append(1 if active else 0)
        else:
            self.names[idx] = name
            self.levels[idx] = intern(level)
            self.streets[idx] = intern(street)
            self.districts[idx] = intern(district)
            self.plan[idx] = plan_idx
            self.active[idx] = 1 if active else 0
        return idx

    def add_rows(self, rows: Iterable[Sequence[object]]) -> int:
        """Add ``(id, name, level, street_id, district_id, active)`` tuples (bench and load)."""
        n = 0
        for sid, name, level, street, district, active in rows:
            self._put(str(sid), str(name), str(level), str(street), str(district), bool(active))
            n += 1
        return n

    async def load(self, session: AsyncSession) -> int:
        stmt = select(
            Subject.id,
            Subject.name,
            Subject.level,
            Subject.street_id,
            Subject.district_id,
            Subject.active,
        ).execution_options(yield_per=_CHUNK)
        result = await session.stream(stmt)
        n = 0
        async for part in result.partitions(_CHUNK):
            n += self.add_rows(part)
        _LOGGER.info("subject directory loaded: %s subjects", n)
        return n

    async def refresh(self, session: AsyncSession, ids: Iterable[str]) -> None:
        """Reload these subjects from the database (new ones are appended)."""
        wanted = list(dict.fromkeys(ids))
        for i in range(0, len(wanted), _CHUNK):
            rows = (
                await session.execute(
                    select(
                        Subject.id,
                        Subject.name,
                        Subject.level,
                        Subject.street_id,
                        Subject.district_id,
                        Subject.active,
                    ).where(Subject.id.in_(wanted[i : i + _CHUNK]))
                )
            ).all()
            self.add_rows(rows)

    async def ensure(self, session: AsyncSession, ids: Iterable[str]) -> None:
        """Make sure every known subject among ``ids`` is loaded (refresh on miss)."""
        missing = [sid for sid in set(ids) if sid not in self.index]
        if missing:
            await self.refresh(session, missing)

    def get(self, sid: str) -> SubjectInfo | None:
        idx = self.index.get(sid)
        if idx is None or not self.active[idx]:
            return None
        return self.info(idx)

    def info(self, idx: int) -> SubjectInfo:
        return SubjectInfo(
            idx,
            self.ids[idx],
            self.names[idx],
            self.levels[idx],
            self.streets[idx],
            self.districts[idx],
        )

    def reassign_plans(self) -> None:
        """Recompute every subject's plan index after the plan book changed."""
        for idx, sid in enumerate(self.ids):
            self.plan[idx] = self.plans.plan_index(sid, self.levels[idx])
