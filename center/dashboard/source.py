"""Where the live dashboard is rebuilt from: the database.

The bus may lose notifications, so the dashboard can always be rebuilt. ``center`` knows the
foundation tables (subjects); alarm and check-in tables belong to ``alerts``, which ``center``
must not import, so those come through an :data:`AlarmLoader` the web layer injects
(``alerts.dashboard_source.load``) — with none, the dashboard starts with no alarms and fills
from live events.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center.jurisdictions import JurisdictionTree
from center.models import Subject

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlarmBaseline:
    """What the alarm tables say now.

    ``alarms``: alarm JSON (the same shape as ``alarm.raised`` data) of every open alarm and of
    every alarm first seen since the earlier of local midnight and 24 hours ago.
    ``expected``: node (district) → ``{"expected": n}`` check-in windows due today, or None
    when unknown. ``done``: ``(street, CheckinBook.key(subject, window_start))`` of today's
    on-time check-ins.
    """

    alarms: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, dict[str, int]] | None = None
    done: list[tuple[str, str]] = field(default_factory=list)
    spotchecks: list[dict[str, Any]] = field(default_factory=list)
    """``{id, state, street_id, district_id}`` of today's and every open spot-check."""


AlarmLoader = Callable[
    [AsyncSession, JurisdictionTree, ZoneInfo, datetime], Awaitable[AlarmBaseline]
]


@dataclass(frozen=True, slots=True)
class Baseline:
    subjects: dict[str, int]
    alarms: AlarmBaseline
    alarms_loaded: bool
    staffing: dict[str, Any] | None = None


class DashboardSource:
    """Reads one consistent-enough baseline; every call opens its own session."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tree: JurisdictionTree,
        tz: ZoneInfo,
        alarm_loader: AlarmLoader | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._tree = tree
        self._tz = tz
        self._alarm_loader = alarm_loader

    def __repr__(self) -> str:
        return f"<DashboardSource alarms={'yes' if self._alarm_loader else 'no'}>"

    async def load(self, now: datetime) -> Baseline:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Subject.street_id, func.count())
                .where(Subject.active.is_(True))
                .group_by(Subject.street_id)
            )
            subjects = {str(street): int(n) for street, n in rows.all()}
            alarms = AlarmBaseline()
            if self._alarm_loader is not None:
                alarms = await self._alarm_loader(session, self._tree, self._tz, now)
            staffing = await self._staffing(session)
        return Baseline(subjects, alarms, self._alarm_loader is not None, staffing)

    async def _staffing(self, session: AsyncSession) -> dict[str, Any] | None:
        """Open sign-ons at the city center (:mod:`center.shifts`); None without the table."""
        from center.shifts import DutySignOn

        roots = self._tree.roots()
        if not roots:
            return None
        try:
            names = (
                await session.execute(
                    select(DutySignOn.username).where(
                        DutySignOn.jurisdiction_id == roots[0].id,
                        DutySignOn.signed_off_at.is_(None),
                    )
                )
            ).scalars()
        except SQLAlchemyError as exc:
            _LOGGER.info("dashboard: no duty roster (%s)", exc.__class__.__name__)
            await session.rollback()
            return None
        officers = list(names.all())
        return {"jurisdiction_id": roots[0].id, "on_duty": len(officers), "officers": officers}
