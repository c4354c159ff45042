"""Raising alarms exactly once: unique keys in the database, not locks in memory.

Two inserts decide everything:

* one-shot occurrences (``no_checkin`` for a window, ``overdue_return`` for a leave) insert
  ``ON CONFLICT (dedup_key) DO NOTHING RETURNING`` — a restart or a second instance that
  inserts the same occurrence gets no row back and publishes nothing;
* episodes (out of bounds, tamper, SOS, …) upsert ``ON CONFLICT (open_key) DO UPDATE`` — a
  repeat while the alarm is open adds to ``count`` and moves ``last_seen`` instead of raising
  a second alarm, so flapping stays one alarm until an officer ends the episode.

A suppressed subject's alarms are written with state ``suppressed`` (and a separate
``open_key``) and never published as raised. Bus events go out only after the commit.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from alerts.directory import SubjectInfo
from alerts.models import ALARMS, CHECKINS, AlarmEvent, AlarmKind, AlarmState
from alerts.serialize import alarm_json
from alerts.severity import SeverityTable
from alerts.suppression import SuppressionCache
from center.bus import Bus
from center.topics import Event

_LOGGER = logging.getLogger(__name__)
EVENTS: Table = AlarmEvent.__table__  # type: ignore[assignment]
TOPIC = "alarms"
ENGINE_ACTOR = "system:alarm-engine"


def dialect_insert(session: AsyncSession | AsyncConnection, table: Table) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_*``) for the session's database."""
    if isinstance(session, AsyncConnection):
        name = session.dialect.name
    else:
        name = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class Fire:
    """A rule fired for a subject. ``dedup_key`` set: a one-shot occurrence; else an episode."""

    kind: str
    subject: SubjectInfo
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
    dedup_key: str | None = None


def alarm_row(
    *,
    kind: str,
    subject: SubjectInfo,
    at: datetime,
    severity: str,
    suppressed: bool,
    dedup_key: str,
    open_key: str | None,
    details: Mapping[str, Any],
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    checkin_event_id: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": severity,
        "state": str(AlarmState.SUPPRESSED if suppressed else AlarmState.NEW),
        "suppressed": suppressed,
        "subject_id": subject.id,
        "level": subject.level,
        "street_id": subject.street_id,
        "district_id": subject.district_id,
        "version": 1,
        "count": 1,
        "first_seen": at,
        "last_seen": at,
        "dedup_key": dedup_key,
        "open_key": open_key,
        "window_start": window_start,
        "window_end": window_end,
        "checkin_event_id": checkin_event_id,
        "details": _dumps(details),
        "created_at": now,
        "updated_at": now,
        "closed_at": None,
    }


def event_row(
    alarm_id: int,
    at: datetime,
    type_: str,
    *,
    to_state: str | None = None,
    data: Mapping[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "alarm_id": alarm_id,
        "at": at,
        "type": type_,
        "actor": ENGINE_ACTOR,
        "from_state": None,
        "to_state": to_state,
        "note": note,
        "data": _dumps(data or {}),
    }


class AlarmRaiser:
    """Writes alarms and their timeline, then publishes what actually changed."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        severity: SeverityTable,
        suppressions: SuppressionCache,
        name_of: Callable[[str], str],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self.severity = severity
        self.suppressions = suppressions
        self._name_of = name_of
        self.raised = 0
        self.repeated = 0

    async def insert_once(
        self, session: AsyncSession, rows: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Insert one-shot alarms; returns the rows this call inserted (with ``id``)."""
        if not rows:
            return []
        stmt = (
            dialect_insert(session, ALARMS)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(ALARMS.c.id, ALARMS.c.dedup_key)
        )
        result = await session.execute(stmt, list(rows))
        ids = {key: alarm_id for alarm_id, key in result.all()}
        inserted = []
        for row in rows:
            alarm_id = ids.get(row["dedup_key"])
            if alarm_id is not None:
                inserted.append({**row, "id": alarm_id})
        if inserted:
            await session.execute(
                EVENTS.insert(),
                [
                    event_row(
                        r["id"],
                        r["created_at"],
                        "raised" if not r["suppressed"] else "suppressed",
                        to_state=r["state"],
                        data={"kind": r["kind"]},
                    )
                    for r in inserted
                ],
            )
        return inserted

    async def _upsert_episode(self, session: AsyncSession, row: dict[str, Any]) -> dict[str, Any]:
        ins = dialect_insert(session, ALARMS)
        stmt = ins.on_conflict_do_update(
            index_elements=["open_key"],
            set_={
                "count": ALARMS.c.count + 1,
                "last_seen": ins.excluded.last_seen,
                "updated_at": ins.excluded.updated_at,
            },
        ).returning(*ALARMS.c)
        result = await session.execute(stmt, row)
        return dict(result.mappings().one())

    def build(self, fire: Fire, now: datetime) -> dict[str, Any]:
        subject = fire.subject
        suppressed = (
            self.suppressions.active_for(subject.id, fire.kind, fire.at.timestamp()) is not None
        )
        if fire.dedup_key is not None:
            dedup_key, open_key = fire.dedup_key, None
        else:
            open_key = f"{fire.kind}:{subject.id}" + (":suppressed" if suppressed else "")
            dedup_key = f"{open_key}:{fire.at.isoformat()}:{secrets.token_hex(4)}"
        return alarm_row(
            kind=fire.kind,
            subject=subject,
            at=fire.at,
            severity=self.severity.severity(fire.kind, subject.level),
            suppressed=suppressed,
            dedup_key=dedup_key,
            open_key=open_key,
            details=fire.details,
            now=now,
        )

    async def fire(self, fires: Sequence[Fire], now: datetime) -> list[dict[str, Any]]:
        """Record rule firings in one transaction; returns the published alarm JSONs."""
        if not fires:
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        async with self._sessionmaker() as session:
            once = [self.build(f, now) for f in fires if f.dedup_key is not None]
            for row in await self.insert_once(session, once):
                out.append((Event.ALARM_RAISED, row))
            for f in fires:
                if f.dedup_key is not None:
                    continue
                row = await self._upsert_episode(session, self.build(f, now))
                first = row["count"] == 1
                await session.execute(
                    EVENTS.insert(),
                    event_row(
                        row["id"],
                        now,
                        ("raised" if not row["suppressed"] else "suppressed")
                        if first
                        else "repeated",
                        to_state=row["state"] if first else None,
                        data={"count": row["count"], **f.details},
                    ),
                )
                out.append((Event.ALARM_RAISED if first else Event.ALARM_UPDATED, row))
            await session.commit()
        return await self.publish(out)

    async def publish(
        self, changes: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Publish ``(type, row)`` pairs after the commit; suppressed alarms stay silent."""
        sent = []
        for type_, row in changes:
            if row["suppressed"]:
                continue
            if type_ == Event.ALARM_RAISED:
                self.raised += 1
            else:
                self.repeated += 1
            data = alarm_json(row, self._name_of(row["subject_id"]))
            await self._bus.notify(TOPIC, type_, data)
            sent.append(data)
        return sent

    async def add_event(
        self,
        alarm_kind: str,
        subject_id: str,
        type_: str,
        at: datetime,
        data: Mapping[str, Any],
    ) -> None:
        """Append a timeline entry to the open episode of ``alarm_kind`` (e.g. cleared)."""
        async with self._sessionmaker() as session:
            alarm_id = (
                await session.execute(
                    ALARMS.select()
                    .with_only_columns(ALARMS.c.id)
                    .where(ALARMS.c.open_key == f"{alarm_kind}:{subject_id}")
                )
            ).scalar_one_or_none()
            if alarm_id is None:
                return
            await session.execute(EVENTS.insert(), event_row(alarm_id, at, type_, data=data))
            await session.commit()

    async def reconcile_late(
        self, session: AsyncSession, since: datetime, now: datetime
    ) -> list[dict[str, Any]]:
        """Mark every ``no_checkin`` alarm of a window since ``since`` whose subject has a
        stored late check-in for that window, whichever instance stored it and whenever
        (a marking that failed — a deadlock, a crash between the two commits — is repaired
        here, within a maintenance round)."""
        rows = (
            await session.execute(
                select(ALARMS.c.dedup_key, CHECKINS.c.event_id, ALARMS.c.level, CHECKINS.c.at)
                .join(
                    CHECKINS,
                    (CHECKINS.c.subject_id == ALARMS.c.subject_id)
                    & (CHECKINS.c.window_start == ALARMS.c.window_start),
                )
                .where(
                    ALARMS.c.kind == str(AlarmKind.NO_CHECKIN),
                    ALARMS.c.window_start >= since,
                    CHECKINS.c.late.is_(True),
                )
            )
        ).all()
        return await self.mark_late(session, [tuple(r) for r in rows], now) if rows else []

    async def mark_late(
        self,
        session: AsyncSession,
        marks: Sequence[tuple[str, str, str, datetime]],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Turn ``no_checkin`` alarms into ``late_checkin``: ``(dedup_key, event_id, level,
        checkin_at)``. Returns the changed rows (the caller commits, then publishes).

        Rows are updated in ``dedup_key`` order, the earliest check-in per alarm: two
        instances marking the same alarms in opposite orders took each other's row locks and
        deadlocked; one order everywhere cannot."""
        changed: list[dict[str, Any]] = []
        first: dict[str, tuple[str, str, str, datetime]] = {}
        for m in marks:
            if m[0] not in first or m[3] < first[m[0]][3]:
                first[m[0]] = m
        marks = [first[k] for k in sorted(first)]
        keys = list(first)
        open_keys: set[str] = set()
        for i in range(0, len(keys), 1000):
            # Most late check-ins have no alarm to mark (the window was satisfied, or it
            # belongs to nobody's missed set); one read spares an UPDATE for each of them.
            open_keys.update(
                (
                    await session.execute(
                        select(ALARMS.c.dedup_key).where(
                            ALARMS.c.dedup_key.in_(keys[i : i + 1000]),
                            ALARMS.c.kind == str(AlarmKind.NO_CHECKIN),
                        )
                    )
                )
                .scalars()
                .all()
            )
        for dedup_key, event_id, level, checkin_at in marks:
            if dedup_key not in open_keys:
                continue
            result = await session.execute(
                update(ALARMS)
                .where(
                    ALARMS.c.dedup_key == dedup_key,
                    ALARMS.c.kind == str(AlarmKind.NO_CHECKIN),
                )
                .values(
                    kind=str(AlarmKind.LATE_CHECKIN),
                    severity=self.severity.severity(AlarmKind.LATE_CHECKIN, level),
                    checkin_event_id=event_id,
                    version=ALARMS.c.version + 1,
                    last_seen=checkin_at,
                    updated_at=now,
                )
                .returning(*ALARMS.c)
            )
            row = result.mappings().one_or_none()
            if row is None:
                continue
            row_d = dict(row)
            await session.execute(
                EVENTS.insert(),
                event_row(
                    row_d["id"],
                    now,
                    "late_checkin",
                    data={"checkin_event_id": event_id, "checkin_at": checkin_at.isoformat()},
                ),
            )
            changed.append(row_d)
        return changed
