"""The alarm read API (staff session, scoped to the caller's jurisdiction).

Items are :func:`alerts.serialize.alarm_json`, the same shape the bus carries, so a console
can merge live events into a page it fetched. Suppressed alarms are listed only when asked
for (``state=suppressed`` or ``suppressed=true``): they are on record, not in the queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from alerts.models import Alarm, AlarmEvent, AlarmKind, AlarmState, Checkin, LocationFix, Severity
from alerts.serialize import alarm_json, columns
from center.authz import Principal, authorize
from center.errors import Forbidden, NotFound, ValidationFailed
from center.models import Subject
from web import keys
from web.jsonio import json_response
from web.paging import enum_param, id_param, paging
from web.policy import SESSION, policy, principal_of

_DETAIL_CHECKIN_DAYS = 14
_DETAIL_CHECKINS = 100
_DETAIL_FIXES = 200
_DETAIL_FIX_HOURS = 24


def alarm_scope(
    request: web.Request, principal: Principal, district: str | None, street: str | None
) -> list[Any]:
    """SQL conditions: the caller's subtree, narrowed by the requested district/street."""
    tree = request.app[keys.TREE]
    for value, name in ((district, "district"), (street, "street")):
        if value is None:
            continue
        if value not in tree:
            raise ValidationFailed(f"unknown {name} {value!r}", details={name: value})
        if not authorize(principal, "alarms.read", tree.path(value)):
            raise Forbidden(f"{name} {value} is outside your jurisdiction")
    conds: list[Any] = []
    own = principal.jurisdiction
    if len(own) >= 3:
        conds.append(Alarm.street_id == own[2])
    elif len(own) == 2:
        conds.append(Alarm.district_id == own[1])
    if district:
        conds.append(Alarm.district_id == district)
    if street:
        conds.append(Alarm.street_id == street)
    return conds


def _bool_param(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name, "")
    if raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ValidationFailed(f"query parameter {name!r} must be true or false", details={name: raw})


@policy("alarms.read", auth=(SESSION,))
async def list_alarms(request: web.Request) -> web.Response:
    """``GET /api/v1/alarms?state=&kind=&severity=&district=&street=&subject=&suppressed=``"""
    principal = principal_of(request)
    page, size = paging(request)
    states = enum_param(request, "state", [str(s) for s in AlarmState])
    kinds = enum_param(request, "kind", [str(k) for k in AlarmKind])
    severities = enum_param(request, "severity", [str(s) for s in Severity])
    conds = alarm_scope(
        request,
        principal,
        request.query.get("district") or None,
        request.query.get("street") or None,
    )
    if states:
        conds.append(Alarm.state.in_(states))
    if kinds:
        conds.append(Alarm.kind.in_(kinds))
    if severities:
        conds.append(Alarm.severity.in_(severities))
    subject = request.query.get("subject")
    if subject:
        conds.append(Alarm.subject_id == subject)
    suppressed = _bool_param(request, "suppressed")
    if suppressed is None and AlarmState.SUPPRESSED not in states:
        suppressed = False
    if suppressed is not None:
        conds.append(Alarm.suppressed.is_(suppressed))
    async with request.app[keys.SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(Alarm).where(*conds))
        rows = (
            await session.execute(
                select(Alarm, Subject.name)
                .outerjoin(Subject, Subject.id == Alarm.subject_id)
                .where(*conds)
                .order_by(Alarm.id.desc())
                .offset((page - 1) * size)
                .limit(size)
            )
        ).all()
    items = [alarm_json(columns(a), name or "") for a, name in rows]
    from web.api_workflow import add_workflow_fields  # duty workflow hook (issue 6)

    await add_workflow_fields(request, *items)
    return json_response(
        {
            "items": items,
            "total": total or 0,
            "page": page,
            "page_size": size,
        }
    )


@policy("alarms.read", auth=(SESSION,))
async def get_alarm(request: web.Request) -> web.Response:
    """``GET /api/v1/alarms/{id}``: the alarm, its timeline, recent check-ins and fixes."""
    principal = principal_of(request)
    alarm_id = id_param(request, "alarm_id", "alarm")
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.SESSIONMAKER]() as session:
        found = (
            await session.execute(
                select(Alarm, Subject.name)
                .outerjoin(Subject, Subject.id == Alarm.subject_id)
                .where(Alarm.id == alarm_id)
            )
        ).one_or_none()
        if found is None or not authorize(
            principal, "alarms.read", request.app[keys.TREE].path(found[0].street_id)
        ):
            raise NotFound("no such alarm in your jurisdiction")
        alarm, name = found
        events = (
            (
                await session.execute(
                    select(AlarmEvent)
                    .where(AlarmEvent.alarm_id == alarm_id)
                    .order_by(AlarmEvent.id)
                )
            )
            .scalars()
            .all()
        )
        checkins = (
            (
                await session.execute(
                    select(Checkin)
                    .where(
                        Checkin.subject_id == alarm.subject_id,
                        Checkin.at >= now - timedelta(days=_DETAIL_CHECKIN_DAYS),
                    )
                    .order_by(Checkin.at.desc())
                    .limit(_DETAIL_CHECKINS)
                )
            )
            .scalars()
            .all()
        )
        fixes = (
            (
                await session.execute(
                    select(LocationFix)
                    .where(
                        LocationFix.subject_id == alarm.subject_id,
                        LocationFix.at >= now - timedelta(hours=_DETAIL_FIX_HOURS),
                    )
                    .order_by(LocationFix.at.desc())
                    .limit(_DETAIL_FIXES)
                )
            )
            .scalars()
            .all()
        )
    body = alarm_json(columns(alarm), name or "")
    body["events"] = [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "type": e.type,
            "actor": e.actor,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "note": e.note,
            "data": _loads(e.data),
        }
        for e in events
    ]
    body["checkins"] = [
        {
            "event_id": c.event_id,
            "at": c.at.isoformat(),
            "source": c.source,
            "lat": c.lat,
            "lon": c.lon,
            "late": c.late,
            "on_leave": c.on_leave,
            "window_start": c.window_start.isoformat() if c.window_start else None,
        }
        for c in checkins
    ]
    body["locations"] = [
        {
            "at": f.at.isoformat(),
            "device": f.device,
            "lat": f.lat,
            "lon": f.lon,
            "accuracy_m": f.accuracy_m,
            "in_city": f.in_city,
        }
        for f in fixes
    ]
    from web.api_workflow import add_workflow_fields  # duty workflow hook (issue 6)

    await add_workflow_fields(request, body)
    return json_response(body)


def _loads(raw: str) -> Any:
    import json

    try:
        return json.loads(raw or "{}")
    except ValueError:
        return {}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/alarms", list_alarms)
    app.router.add_get("/api/v1/alarms/{alarm_id}", get_alarm)
