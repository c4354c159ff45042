"""The alarm's JSON, declared once: the read API, the console queue, the bus and the dashboard.

``alarm.raised`` and ``alarm.updated`` carry :class:`AlarmOut`, exactly what
``GET /api/v1/alarms`` lists and ``GET /api/v1/alarms/queue`` queues, so a console merges
bus events into a page it fetched without translating between shapes, and the live
dashboard's rebuilt record equals the live event for the same version. Field names are the
documented ones (docs/api.md, docs/websocket.md); the workflow's fields (owner level, SLA
deadlines, disposition) are part of every alarm since the model maps every column.

Timestamps stay ``datetime.isoformat()`` strings (``+00:00``, as always documented), typed
as ``date-time`` for the generated document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import msgspec

from alerts.models import Alarm, AlarmEvent, AlarmKind, AlarmState, Severity
from alerts.transitions import Action, Disposition, Level

IsoTime = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]

ALARM_COLUMNS: tuple[str, ...] = tuple(c.name for c in Alarm.__table__.columns)


class AlarmOut(msgspec.Struct, kw_only=True):
    """One alarm (docs/api.md, "Alarms"). ``actions`` — what the caller may do — is present
    only in answers to an officer, never on the bus (it depends on who asks)."""

    id: int
    kind: AlarmKind
    severity: Severity
    state: AlarmState
    suppressed: bool
    subject_id: str
    subject_name: str
    level: str
    street_id: str
    district_id: str
    version: int
    count: int
    first_seen: IsoTime
    last_seen: IsoTime
    window_start: IsoTime | None
    window_end: IsoTime | None
    checkin_event_id: str | None
    details: dict[str, Any]
    created_at: IsoTime | None
    updated_at: IsoTime | None
    closed_at: IsoTime | None
    owner_level: Level = Level.STREET
    ack_due_at: IsoTime | None = None
    report_due_at: IsoTime | None = None
    loop_due_at: IsoTime | None = None
    loop_breached: bool = False
    disposition: Disposition | None = None
    escalations: int = 0
    acknowledged_at: IsoTime | None = None
    dispatched_at: IsoTime | None = None
    reported_at: IsoTime | None = None
    resolved_at: IsoTime | None = None
    actions: list[Action] | msgspec.UnsetType = msgspec.UNSET


class TimelineEntry(msgspec.Struct, kw_only=True):
    """One ``alarm_events`` row: raised/repeated/cleared by the engine, transitions, notes,
    escalations and evidence by the workflow."""

    id: int
    at: IsoTime
    type: str
    actor: str
    from_state: str | None
    to_state: str | None
    note: str
    data: dict[str, Any]
    # How people know the actor: a user's display name ("" for the system and integrations),
    # so that no page shows "user:duty1".
    actor_name: str = ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        parsed = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def alarm_out(
    row: Mapping[Any, Any], subject_name: str | None = None, actions: list[Action] | None = None
) -> AlarmOut:
    """``row`` maps column names to values (a RETURNING/SELECT mapping, or :func:`columns`);
    columns it lacks (an engine insert before the workflow touched it) take their server
    defaults. ``subject_name`` defaults to the row's ``subject_name`` label."""
    if subject_name is None:
        subject_name = row.get("subject_name") or ""
    disposition = row.get("disposition")
    return AlarmOut(
        id=row["id"],
        kind=AlarmKind(row["kind"]),
        severity=Severity(row["severity"]),
        state=AlarmState(row["state"]),
        suppressed=bool(row["suppressed"]),
        subject_id=row["subject_id"],
        subject_name=subject_name,
        level=row["level"],
        street_id=row["street_id"],
        district_id=row["district_id"],
        version=row["version"],
        count=row["count"],
        first_seen=row["first_seen"].isoformat(),
        last_seen=row["last_seen"].isoformat(),
        window_start=_iso(row.get("window_start")),
        window_end=_iso(row.get("window_end")),
        checkin_event_id=row.get("checkin_event_id"),
        details=_details(row.get("details")),
        created_at=_iso(row.get("created_at")),
        updated_at=_iso(row.get("updated_at")),
        closed_at=_iso(row.get("closed_at")),
        owner_level=Level(row.get("owner_level") or Level.STREET),
        ack_due_at=_iso(row.get("ack_due_at")),
        report_due_at=_iso(row.get("report_due_at")),
        loop_due_at=_iso(row.get("loop_due_at")),
        loop_breached=bool(row.get("loop_breached")),
        disposition=Disposition(disposition) if disposition else None,
        escalations=int(row.get("escalations") or 0),
        acknowledged_at=_iso(row.get("acknowledged_at")),
        dispatched_at=_iso(row.get("dispatched_at")),
        reported_at=_iso(row.get("reported_at")),
        resolved_at=_iso(row.get("resolved_at")),
        actions=msgspec.UNSET if actions is None else actions,
    )


def alarm_json(row: Mapping[Any, Any], subject_name: str | None = None) -> dict[str, Any]:
    """:func:`alarm_out` as plain JSON data (the bus and the dashboard carry dicts)."""
    data: dict[str, Any] = msgspec.to_builtins(alarm_out(row, subject_name))
    return data


def columns(alarm: Alarm) -> dict[str, Any]:
    return {name: getattr(alarm, name) for name in ALARM_COLUMNS}


def timeline_entry(e: AlarmEvent) -> TimelineEntry:
    return TimelineEntry(
        id=e.id,
        at=e.at.isoformat(),
        type=e.type,
        actor=e.actor,
        from_state=e.from_state,
        to_state=e.to_state,
        note=e.note,
        data=_details(e.data),
    )
