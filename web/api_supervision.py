"""Staff endpoints that change how the alarm engine judges a subject: leaves, suppressions.

Both are audited in the same transaction as the change, and both take effect in this
instance's engine at once (other instances reload them within a minute).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from alerts.models import AlarmKind, Leave, LeaveState, Suppression
from alerts.suppression import parse_kinds
from center import audit
from center.authz import authorize
from center.errors import NotFound, ValidationFailed
from center.models import Subject
from web import keys
from web.components import ALERTS
from web.jsonio import json_response, read_object
from web.policy import SESSION, policy, principal_of

MAX_SUPPRESSION = timedelta(days=90)
MAX_LEAVE = timedelta(days=90)


def _text(body: dict[str, Any], name: str, max_len: int, *, required: bool) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > max_len or (required and not value.strip()):
        raise ValidationFailed(
            f"'{name}' must be {'a non-empty' if required else 'a'} string of at most "
            f"{max_len} characters",
            details={"field": name},
        )
    return value.strip()


def _time(body: dict[str, Any], name: str, default: datetime | None) -> datetime:
    raw = body.get(name)
    if raw is None and default is not None:
        return default
    if not isinstance(raw, str):
        raise ValidationFailed(
            f"'{name}' must be an ISO 8601 time with an offset", details={"field": name}
        )
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError
        return value
    except (ValueError, OverflowError):
        raise ValidationFailed(
            f"'{name}' must be an ISO 8601 time with an offset, e.g. 2026-11-30T18:00:00+08:00",
            details={"field": name},
        ) from None


async def _subject(request: web.Request, action: str) -> Subject:
    principal = principal_of(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        subject = await session.get(Subject, request.match_info["subject_id"])
    if subject is None or not authorize(
        principal, action, request.app[keys.TREE].path(subject.street_id)
    ):
        raise NotFound("no such subject in your jurisdiction")
    return subject


def leave_json(row: Leave) -> dict[str, Any]:
    return {
        "id": row.id,
        "subject_id": row.subject_id,
        "destination": row.destination,
        "reason": row.reason,
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
        "state": row.state,
        "returned_at": row.returned_at.isoformat() if row.returned_at else None,
        "created_by": row.created_by,
    }


def suppression_json(row: Suppression) -> dict[str, Any]:
    return {
        "id": row.id,
        "subject_id": row.subject_id,
        "kinds": sorted(parse_kinds(row.kinds)),
        "reason": row.reason,
        "starts_at": row.starts_at.isoformat(),
        "until": row.until.isoformat(),
        "created_by": row.created_by,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@policy("leaves.manage", auth=(SESSION,))
async def create_leave(request: web.Request) -> web.Response:
    """``POST /api/v1/subjects/{id}/leaves`` ``{destination, ends_at, starts_at?, reason?}``"""
    subject = await _subject(request, "leaves.manage")
    body = await read_object(request)
    now = request.app[keys.CLOCK].now()
    destination = _text(body, "destination", 128, required=True)
    reason = _text(body, "reason", 255, required=False)
    starts_at = _time(body, "starts_at", now)
    ends_at = _time(body, "ends_at", None)
    if ends_at <= max(starts_at, now):
        raise ValidationFailed("'ends_at' must be in the future and after 'starts_at'")
    if ends_at - starts_at > MAX_LEAVE:
        raise ValidationFailed(f"a leave lasts at most {MAX_LEAVE.days} days")
    principal = principal_of(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        row = Leave(
            subject_id=subject.id,
            destination=destination,
            reason=reason,
            starts_at=starts_at,
            ends_at=ends_at,
            state=LeaveState.ACTIVE,
            created_by=principal.actor,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            actor=principal.actor,
            action="leave.create",
            target_type="subject",
            target_id=subject.id,
            details={
                "leave_id": row.id,
                "destination": destination,
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
            },
            at=now,
        )
        await session.commit()
    request.app[ALERTS].leave_added(row)
    return json_response(leave_json(row), status=201)


async def _recent(request: web.Request, model: type[Leave] | type[Suppression]) -> list[Any]:
    """The subject's latest 100 rows of ``model`` (leaves or suppressions), newest first."""
    subject = await _subject(request, "subjects.read")
    async with request.app[keys.SESSIONMAKER]() as session:
        result = await session.execute(
            select(model).where(model.subject_id == subject.id).order_by(model.id.desc()).limit(100)
        )
        return list(result.scalars().all())


@policy("subjects.read", auth=(SESSION,))
async def list_leaves(request: web.Request) -> web.Response:
    rows = await _recent(request, Leave)
    return json_response({"items": [leave_json(r) for r in rows]})


@policy("suppressions.manage", auth=(SESSION,))
async def create_suppression(request: web.Request) -> web.Response:
    """``POST /api/v1/subjects/{id}/suppressions`` ``{reason, until, starts_at?, kinds?}``"""
    subject = await _subject(request, "suppressions.manage")
    body = await read_object(request)
    now = request.app[keys.CLOCK].now()
    reason = _text(body, "reason", 255, required=True)
    starts_at = _time(body, "starts_at", now)
    until = _time(body, "until", None)
    if until <= max(starts_at, now):
        raise ValidationFailed("'until' must be in the future and after 'starts_at'")
    if until - now > MAX_SUPPRESSION:
        raise ValidationFailed(f"a suppression lasts at most {MAX_SUPPRESSION.days} days")
    kinds_raw = body.get("kinds", [])
    allowed = {str(k) for k in AlarmKind}
    if not isinstance(kinds_raw, list) or any(k not in allowed for k in kinds_raw):
        raise ValidationFailed(
            f"'kinds' must be a list of alarm kinds ({', '.join(sorted(allowed))})",
            details={"field": "kinds"},
        )
    principal = principal_of(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        row = Suppression(
            subject_id=subject.id,
            kinds=",".join(sorted(set(kinds_raw))),
            reason=reason,
            starts_at=starts_at,
            until=until,
            created_by=principal.actor,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            actor=principal.actor,
            action="suppression.create",
            target_type="subject",
            target_id=subject.id,
            details={
                "suppression_id": row.id,
                "reason": reason,
                "kinds": sorted(set(kinds_raw)),
                "starts_at": starts_at.isoformat(),
                "until": until.isoformat(),
            },
            at=now,
        )
        await session.commit()
    request.app[ALERTS].suppression_added(row)
    return json_response(suppression_json(row), status=201)


@policy("subjects.read", auth=(SESSION,))
async def list_suppressions(request: web.Request) -> web.Response:
    rows = await _recent(request, Suppression)
    return json_response({"items": [suppression_json(r) for r in rows]})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/subjects/{subject_id}/leaves", create_leave)
    r.add_get("/api/v1/subjects/{subject_id}/leaves", list_leaves)
    r.add_post("/api/v1/subjects/{subject_id}/suppressions", create_suppression)
    r.add_get("/api/v1/subjects/{subject_id}/suppressions", list_suppressions)
