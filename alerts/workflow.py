"""The duty workflow service: officers' actions on alarms, with optimistic concurrency.

Every action is one transaction: read the row, ask :func:`alerts.transitions.decide`, write
``UPDATE alarms … WHERE id = :id AND version = :v AND state = :s`` — zero rows means another
officer won the race and this one gets a 409 ``conflict`` — then the timeline event, the audit
entry and the timer changes in the same transaction. ``alarm.updated`` is published only after
the commit, so nobody is told about a change that rolled back.

Jurisdiction is checked before anything else and answers 404, never 403: an officer must not
learn that another street's alarm exists.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.actions import MAX_NOTE as MAX_NOTE
from alerts.actions import ActionRequest, check
from alerts.alarm_log import record_alarm_event
from alerts.models import ALARMS, AlarmEvent
from alerts.serialize import AlarmOut, TimelineEntry, alarm_json, alarm_out, timeline_entry
from alerts.transitions import (
    UNACKNOWLEDGED,
    Action,
    Level,
    allowed_actions,
    decide,
    level_of,
)
from center.alarm_vocab import WORKFLOW_STATES, AlarmState
from center.authz import Action as Access
from center.authz import JurisdictionPath, Principal, authorize
from center.bus import Bus
from center.clock import Clock
from center.errors import Conflict, Forbidden, NotFound
from center.jurisdictions import JurisdictionTree
from center.models import Subject, User
from center.timers import TimerService
from center.topics import Event

_LOGGER = logging.getLogger(__name__)
ResolvedHook = Callable[
    [AsyncSession, Principal, Mapping[str, Any], str | None, bool], Awaitable[None]
]

TOPIC: Final = "alarms"
UPDATED: Final = Event.ALARM_UPDATED
ACK_TIMER: Final = "alarm_ack"
REPORT_TIMER: Final = "alarm_report"
LOOP_TIMER: Final = "alarm_loop"

EVENT_TYPE: Final = {
    Action.ACKNOWLEDGE: "acknowledged",
    Action.DISPATCH: "dispatched",
    Action.REPORT: "reported",
    Action.RESOLVE: "resolved",
    Action.CLOSE: "closed",
    Action.REOPEN: "reopened",
    Action.NOTE: "note",
}


def _parse_sla(spec: str, unit: timedelta, name: str) -> tuple[dict[str, timedelta], timedelta]:
    table: dict[str, timedelta] = {}
    default = None
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or amount <= 0:
            raise ValueError(f"{name} entry {item!r}: expected severity=<positive number>")
        if key.strip() == "default":
            default = unit * amount
        else:
            table[key.strip()] = unit * amount
    if default is None:
        default = max(table.values(), default=unit * 15)
    return table, default


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Deadlines per severity: acknowledge, report after dispatch, and the closed loop."""

    ack: Mapping[str, timedelta]
    ack_default: timedelta
    report: Mapping[str, timedelta]
    report_default: timedelta
    loop: timedelta

    @classmethod
    def parse(cls, ack_minutes: str, report_hours: str, loop_hours: float) -> SlaPolicy:
        ack, ack_default = _parse_sla(ack_minutes, timedelta(minutes=1), "ack_sla_minutes")
        report, report_default = _parse_sla(report_hours, timedelta(hours=1), "report_sla_hours")
        return cls(ack, ack_default, report, report_default, timedelta(hours=loop_hours))

    def ack_for(self, severity: str) -> timedelta:
        return self.ack.get(severity, self.ack_default)

    def report_for(self, severity: str) -> timedelta:
        return self.report.get(severity, self.report_default)


def alarm_path(
    tree: JurisdictionTree, street_id: str | None, district_id: str | None
) -> JurisdictionPath:
    node = street_id if street_id and street_id in tree else district_id
    return tree.path(node or "")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Workflow:
    """Officers' actions, the alarm JSON the workflow publishes and the timeline."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: Bus,
        clock: Clock,
        timers: TimerService,
        tree: JurisdictionTree,
        sla: SlaPolicy,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._clock = clock
        self.timers = timers
        self.tree = tree
        self.sla = sla
        self.actions = 0
        self.conflicts = 0
        self.on_resolved: list[ResolvedHook] = []
        """Called in the transaction that resolves an alarm (the face baseline's excuse)."""

    # -- reading --------------------------------------------------------------------------

    async def row(self, session: AsyncSession, alarm_id: int) -> dict[str, Any] | None:
        result = await session.execute(
            select(ALARMS, Subject.name.label("subject_name"))
            .select_from(
                ALARMS.outerjoin(Subject.__table__, Subject.__table__.c.id == ALARMS.c.subject_id)
            )
            .where(ALARMS.c.id == alarm_id)
        )
        found = result.mappings().one_or_none()
        return {str(k): v for k, v in found.items()} if found is not None else None

    def to_json(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The bus's alarm JSON (no ``actions``: those depend on who asks)."""
        return alarm_json(row)

    def view(self, row: Mapping[str, Any], principal: Principal) -> AlarmOut:
        """The alarm as answered to ``principal``, with the actions they may take."""
        level = level_of(principal.role)
        actions = (
            allowed_actions(row["state"], level, row.get("owner_level") or Level.STREET)
            if level is not None and row["state"] in WORKFLOW_STATES
            else []
        )
        return alarm_out(row, actions=actions)

    def visible(self, principal: Principal, row: Mapping[str, Any], action: str) -> bool:
        return authorize(
            principal, action, alarm_path(self.tree, row["street_id"], row["district_id"])
        )

    async def visible_row(
        self, principal: Principal, alarm_id: int, action: str = Access.ALARMS_READ
    ) -> dict[str, Any]:
        """The alarm's row, or 404 outside the caller's scope (never 403: see above)."""
        async with self._sessionmaker() as session:
            row = await self.row(session, alarm_id)
        if row is None or not self.visible(principal, row, action):
            raise NotFound("no such alarm in your jurisdiction")
        return row

    async def get(
        self, principal: Principal, alarm_id: int
    ) -> tuple[AlarmOut, list[TimelineEntry]]:
        """The alarm with its timeline; 404 outside the caller's scope."""
        async with self._sessionmaker() as session:
            row = await self.row(session, alarm_id)
            if row is None or not self.visible(principal, row, Access.ALARMS_READ):
                raise NotFound("no such alarm in your jurisdiction")
            return self.view(row, principal), await timeline(session, alarm_id)

    # -- acting ---------------------------------------------------------------------------

    async def act(self, principal: Principal, alarm_id: int, request: ActionRequest) -> AlarmOut:
        """One action in one transaction (see the module docstring); the request is
        :func:`alerts.actions.check`-ed here too, so every caller gets the action's rule."""
        request = check(request)
        now = self._clock.now()
        async with self._sessionmaker() as session:
            row = await self.row(session, alarm_id)
            if row is None or not self.visible(principal, row, Access.ALARMS_ACT):
                raise NotFound("no such alarm in your jurisdiction")
            level = level_of(principal.role)
            if level is None:
                raise Forbidden(f"role {principal.role} does not act on alarms")
            if row["version"] != request.version:
                self.conflicts += 1
                raise Conflict(
                    "the alarm changed since you loaded it; reload and try again",
                    details={"version": row["version"], "state": row["state"]},
                )
            if row["state"] not in WORKFLOW_STATES:
                raise NotFound("no such alarm in your jurisdiction")  # suppressed: never raised
            decision = decide(row["state"], request.action, level, row["owner_level"] or "street")
            values = self._changes(row, request, decision.to_state, now)
            bump = request.action is not Action.NOTE
            if bump:
                values["version"] = row["version"] + 1
                values["updated_at"] = now
                result = await session.execute(
                    update(ALARMS)
                    .where(
                        ALARMS.c.id == alarm_id,
                        ALARMS.c.version == request.version,
                        ALARMS.c.state == row["state"],
                    )
                    .values(**values)
                )
                if not getattr(result, "rowcount", 0):
                    self.conflicts += 1
                    await session.rollback()
                    raise Conflict(
                        "another officer changed this alarm first; reload and try again",
                        details={"alarm_id": alarm_id},
                    )
            await self._timers_for(session, row, request.action, values, now)
            if request.action is Action.RESOLVE:
                for hook in self.on_resolved:
                    await hook(
                        session,
                        principal,
                        row,
                        request.disposition and str(request.disposition),
                        request.add_to_baseline,
                    )
            event_data: dict[str, Any] = {"version": values.get("version", row["version"])}
            if request.disposition:
                event_data["disposition"] = str(request.disposition)
            if request.action is Action.DISPATCH:
                event_data["report_due_at"] = _iso(values.get("report_due_at"))
            await record_alarm_event(
                session,
                alarm_id=alarm_id,
                at=now,
                type=EVENT_TYPE[request.action],
                actor=principal.actor,
                from_state=str(decision.from_state),
                to_state=str(decision.to_state),
                note=request.note,
                data=event_data,
                audit_action=f"alarm.{request.action}",
                audit_details={
                    "from_state": str(decision.from_state),
                    "to_state": str(decision.to_state),
                    "note": request.note,
                    "disposition": request.disposition and str(request.disposition),
                    "version": values.get("version", row["version"]),
                },
            )
            await session.commit()
            fresh = await self.row(session, alarm_id)
        assert fresh is not None
        self.actions += 1
        _LOGGER.info(
            "alarm %s: %s -> %s by %s",
            alarm_id,
            decision.from_state,
            decision.to_state,
            principal.actor,
        )
        if bump:
            await self.publish(self.to_json(fresh))
        return self.view(fresh, principal)

    def _changes(
        self, row: Mapping[str, Any], request: ActionRequest, to_state: AlarmState, now: datetime
    ) -> dict[str, Any]:
        values: dict[str, Any] = {"state": str(to_state)}
        action = request.action
        if action is Action.ACKNOWLEDGE:
            values["acknowledged_at"] = row["acknowledged_at"] or now
        elif action is Action.DISPATCH:
            values["dispatched_at"] = now
            values["owner_level"] = str(Level.STREET)
            values["report_due_at"] = now + self.sla.report_for(row["severity"])
            if row["acknowledged_at"] is None:
                values["acknowledged_at"] = now
        elif action is Action.REPORT:
            values["reported_at"] = now
        elif action is Action.RESOLVE:
            values["resolved_at"] = now
            values["disposition"] = str(request.disposition)
            values["open_key"] = None
        elif action is Action.CLOSE:
            values["closed_at"] = now
            values["open_key"] = None
        elif action is Action.REOPEN:
            values["closed_at"] = None
            values["resolved_at"] = None
            values["disposition"] = None
            values["ack_due_at"] = now + self.sla.ack_for(row["severity"])
        elif action is Action.NOTE:
            values = {}
        return values

    async def _timers_for(
        self,
        session: AsyncSession,
        row: Mapping[str, Any],
        action: Action,
        values: Mapping[str, Any],
        now: datetime,
    ) -> None:
        ref = f"alarm:{row['id']}"
        version = values.get("version", row["version"])
        if action is Action.ACKNOWLEDGE or (
            action is Action.DISPATCH and row["state"] in UNACKNOWLEDGED
        ):
            await self.timers.cancel(session, ref=ref, kind=ACK_TIMER)
        if action is Action.DISPATCH:
            await self.timers.cancel(session, ref=ref, kind=REPORT_TIMER)
            await self.timers.schedule(
                session,
                kind=REPORT_TIMER,
                key=f"{REPORT_TIMER}:{row['id']}:{version}",
                ref=ref,
                due_at=values["report_due_at"],
                payload={"alarm_id": row["id"]},
            )
        elif action in (Action.REPORT, Action.RESOLVE):
            await self.timers.cancel(session, ref=ref, kind=REPORT_TIMER)
        elif action is Action.CLOSE:
            await self.timers.cancel(session, ref=ref, kind=ACK_TIMER)
            await self.timers.cancel(session, ref=ref, kind=REPORT_TIMER)
        elif action is Action.REOPEN:
            await self.timers.schedule(
                session,
                kind=ACK_TIMER,
                key=f"{ACK_TIMER}:{row['id']}:{version}",
                ref=ref,
                due_at=values["ack_due_at"],
                payload={"alarm_id": row["id"]},
            )

    async def publish(self, data: Mapping[str, Any]) -> None:
        await self._bus.notify(TOPIC, UPDATED, data)


async def timeline(session: AsyncSession, alarm_id: int) -> list[TimelineEntry]:
    rows = await session.execute(
        select(AlarmEvent)
        .where(AlarmEvent.alarm_id == alarm_id)
        .order_by(AlarmEvent.at, AlarmEvent.id)
    )
    return await with_actor_names(session, [timeline_entry(e) for e in rows.scalars()])


async def with_actor_names(
    session: AsyncSession, entries: list[TimelineEntry]
) -> list[TimelineEntry]:
    """The entries with ``actor_name`` set for users (one query for the whole timeline)."""
    usernames = {e.actor.split(":", 1)[1] for e in entries if e.actor.startswith("user:")}
    if not usernames:
        return entries
    found = await session.execute(
        select(User.username, User.display_name).where(User.username.in_(usernames))
    )
    names = {username: display for username, display in found.tuples()}
    for e in entries:
        if e.actor.startswith("user:"):
            e.actor_name = names.get(e.actor.split(":", 1)[1], "") or ""
    return entries
