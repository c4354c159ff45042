"""Three levels, one timer per level: acknowledge, report and closed-loop deadlines.

When an alarm is raised it is *armed*: its deadlines are stamped on the row and durable
timers are created (``alarm_ack``, ``alarm_loop``). Every instance hears ``alarm.raised``, so
arming is idempotent twice over — the row is stamped with ``WHERE loop_due_at IS NULL`` and
timer keys are unique — and a periodic sweep arms what a lost bus message left behind (the
database is the source of truth, the bus may drop notifications).

A missed acknowledgement or a missed report moves ownership one level up (street → district
→ city), starts a fresh deadline for that level and publishes ``alarm.updated`` so the level
above sees it; at the city the miss is recorded on the timeline. An alarm still open when the
closed loop (24 h) runs out is flagged ``loop_breached`` and counted.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.alarm_log import record_alarm_event
from alerts.models import ALARMS, AlarmState
from alerts.transitions import OPEN_STATES, UNACKNOWLEDGED, Level, level_above
from alerts.workflow import ACK_TIMER, LOOP_TIMER, REPORT_TIMER, Workflow
from center.bus import Bus, BusMessage, Unsubscribe
from center.clock import Clock
from center.timers import AfterCommit, FiredTimer, TimerService
from center.topics import Event, Topic

_LOGGER = logging.getLogger(__name__)

ACTOR: Final = "system:escalation"
RAISED: Final = Event.ALARM_RAISED


class EscalationRetry(Exception):
    """The alarm changed under the timer (an officer acted at that instant); retry later."""


async def _system_event(
    session: AsyncSession, alarm_id: int, now: datetime, state: str, type: str, data: dict[str, Any]
) -> None:
    """A timeline row and its audit entry (``alarm.<type>``) for what the system did on its
    own: the state does not change, only the record of a missed deadline."""
    await record_alarm_event(
        session,
        alarm_id=alarm_id,
        at=now,
        type=type,
        actor=ACTOR,
        from_state=state,
        to_state=state,
        data=data,
        audit_action=f"alarm.{type}",
        audit_details=data,
    )


class Escalator:
    """Arms raised alarms and handles the three deadline timers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        clock: Clock,
        timers: TimerService,
        workflow: Workflow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._clock = clock
        self._timers = timers
        self._workflow = workflow
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._unsubscribe: Unsubscribe | None = None
        self.escalated = 0
        self.breaches = 0
        self.armed = 0
        timers.register(ACK_TIMER, self._on_ack_due)
        timers.register(REPORT_TIMER, self._on_report_due)
        timers.register(LOOP_TIMER, self._on_loop_due)

    def __repr__(self) -> str:
        return f"<Escalator armed={self.armed} escalated={self.escalated} breaches={self.breaches}>"

    # -- arming ---------------------------------------------------------------------------

    def listen(self) -> None:
        """Queue raised alarms for arming (bus handlers are synchronous)."""

        def on_message(msg: BusMessage) -> None:
            if msg.type == RAISED and isinstance(msg.data.get("id"), int):
                self._queue.put_nowait(int(msg.data["id"]))

        self._unsubscribe = self._bus.subscribe(Topic.ALARMS, on_message)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def run_arming(self, sweep_s: float) -> None:
        """Arm queued alarms; every ``sweep_s`` seconds arm whatever the bus lost.

        ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` can swallow the
        cancellation when the queue delivers at the same moment, and this loop then never
        ends — shutdown hung waiting for it (seen in tests under load).
        """
        await self.sweep()
        while True:
            try:
                async with asyncio.timeout(sweep_s):
                    alarm_id = await self._queue.get()
            except TimeoutError:
                await self.sweep()
                continue
            try:
                await self.arm(alarm_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("arming alarm %s failed; the sweep will retry", alarm_id)

    async def sweep(self, limit: int = 1000) -> int:
        async with self._sessionmaker() as session:
            ids = (
                (
                    await session.execute(
                        select(ALARMS.c.id)
                        .where(
                            ALARMS.c.loop_due_at.is_(None),
                            ALARMS.c.state.in_([str(s) for s in OPEN_STATES]),
                        )
                        .order_by(ALARMS.c.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        n = 0
        for alarm_id in ids:
            if await self.arm(alarm_id):
                n += 1
        return n

    async def arm(self, alarm_id: int) -> bool:
        """Stamp the deadlines and create the timers, once; True when this call did it."""
        for _ in range(5):
            async with self._sessionmaker() as session:
                row = await self._workflow.row(session, alarm_id)
                if row is None or row["loop_due_at"] is not None or row["state"] not in OPEN_STATES:
                    return False
                now = self._clock.now()
                base = row["created_at"] or now
                sla = self._workflow.sla
                loop_due = base + sla.loop
                ack_due = (
                    base + sla.ack_for(row["severity"]) if row["state"] in UNACKNOWLEDGED else None
                )
                # Arming stamps deadlines only; it is not an officer's change, so the version
                # stays: an officer who read the alarm a moment before may still act on it.
                version = row["version"]
                result = await session.execute(
                    update(ALARMS)
                    .where(
                        ALARMS.c.id == alarm_id,
                        ALARMS.c.version == version,
                        ALARMS.c.loop_due_at.is_(None),
                    )
                    .values(ack_due_at=ack_due, loop_due_at=loop_due, updated_at=now)
                )
                if not getattr(result, "rowcount", 0):
                    await session.rollback()
                    continue  # an officer acted (or another instance armed): look again
                ref = f"alarm:{alarm_id}"
                payload = {"alarm_id": alarm_id}
                if ack_due is not None:
                    await self._timers.schedule(
                        session,
                        kind=ACK_TIMER,
                        key=f"{ACK_TIMER}:{alarm_id}:{version}",
                        ref=ref,
                        due_at=ack_due,
                        payload=payload,
                    )
                await self._timers.schedule(
                    session,
                    kind=LOOP_TIMER,
                    key=f"{LOOP_TIMER}:{alarm_id}",
                    ref=ref,
                    due_at=loop_due,
                    payload=payload,
                )
                await session.commit()
                fresh = await self._workflow.row(session, alarm_id)
            self.armed += 1
            if fresh is not None:
                await self._workflow.publish(self._workflow.to_json(fresh))
            return True
        return False

    # -- timers ---------------------------------------------------------------------------

    async def _on_ack_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        return await self._escalate(session, timer, "ack", UNACKNOWLEDGED, "ack_due_at")

    async def _on_report_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        return await self._escalate(
            session, timer, "report", frozenset({AlarmState.DISPATCHED}), "report_due_at"
        )

    async def _escalate(
        self,
        session: AsyncSession,
        timer: FiredTimer,
        reason: str,
        states: frozenset[AlarmState],
        due_column: str,
    ) -> AfterCommit | None:
        alarm_id = int(timer.payload["alarm_id"])
        row = await self._workflow.row(session, alarm_id)
        if row is None or row["state"] not in states:
            return None  # done in time, or moved on: nothing to escalate
        now = timer.fired_at
        owner = Level(row["owner_level"] or Level.STREET)
        up = level_above(owner)
        if up is None:
            await record_alarm_event(
                session,
                alarm_id=alarm_id,
                at=now,
                type=f"{reason}_overdue",
                actor=ACTOR,
                from_state=row["state"],
                to_state=row["state"],
                data={"level": str(owner), "due_at": timer.due_at.isoformat()},
                audit_action=f"alarm.{reason}_overdue",
                audit_details={"level": str(owner)},
            )
            return None
        sla = self._workflow.sla
        window = (
            sla.ack_for(row["severity"]) if reason == "ack" else sla.report_for(row["severity"])
        )
        due = now + window
        version = row["version"] + 1
        result = await session.execute(
            update(ALARMS)
            .where(ALARMS.c.id == alarm_id, ALARMS.c.version == row["version"])
            .values(
                owner_level=str(up),
                escalations=(row["escalations"] or 0) + 1,
                version=version,
                updated_at=now,
                **{due_column: due},
            )
        )
        if not getattr(result, "rowcount", 0):
            raise EscalationRetry(f"alarm {alarm_id} changed while escalating")
        kind = ACK_TIMER if reason == "ack" else REPORT_TIMER
        await self._timers.schedule(
            session,
            kind=kind,
            key=f"{kind}:{alarm_id}:{version}",
            ref=f"alarm:{alarm_id}",
            due_at=due,
            payload={"alarm_id": alarm_id},
        )
        data = {"reason": reason, "from_level": str(owner), "to_level": str(up), "due_at": due}
        await _system_event(session, alarm_id, now, row["state"], "escalated", data)
        self.escalated += 1
        _LOGGER.info(
            "alarm %s: %s deadline missed, escalated %s -> %s", alarm_id, reason, owner, up
        )
        return self._announce(alarm_id)

    async def _on_loop_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        alarm_id = int(timer.payload["alarm_id"])
        row = await self._workflow.row(session, alarm_id)
        if row is None or row["state"] not in OPEN_STATES or row["loop_breached"]:
            return None
        now = timer.fired_at
        result = await session.execute(
            update(ALARMS)
            .where(ALARMS.c.id == alarm_id, ALARMS.c.version == row["version"])
            .values(loop_breached=True, version=row["version"] + 1, updated_at=now)
        )
        if not getattr(result, "rowcount", 0):
            raise EscalationRetry(f"alarm {alarm_id} changed while flagging the breach")
        data = {"loop_due_at": _iso(row["loop_due_at"]), "state": row["state"]}
        await _system_event(session, alarm_id, now, row["state"], "loop_breached", data)
        self.breaches += 1
        _LOGGER.warning("alarm %s: the closed loop was not completed in time", alarm_id)
        return self._announce(alarm_id)

    def _announce(self, alarm_id: int) -> AfterCommit:
        async def announce() -> None:
            async with self._sessionmaker() as session:
                row = await self._workflow.row(session, alarm_id)
            if row is not None:
                await self._workflow.publish(self._workflow.to_json(row))

        return announce


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
