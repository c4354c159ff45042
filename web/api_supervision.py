"""Staff endpoints that change how the alarm engine judges a subject: leaves, suppressions.

The handlers decode, find the subject in the caller's scope (404 outside it, as for an
unknown one) and call the services in :mod:`alerts.leave` and :mod:`alerts.suppression`,
which audit in the same transaction and update this instance's engine at once (other
instances reload within a minute).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from alerts import leave, suppression
from alerts.models import AlarmKind, Leave, LeaveState, Suppression
from center.authz import Action
from center.models import Subject
from center.scope import visible_or_404
from web import keys
from web.api_directory import SubjectPath
from web.components import ALERTS
from web.contract import contract
from web.fields import NOT_BLANK, PLAIN
from web.policy import SESSION, policy, principal_of

AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


async def _subject(request: web.Request, subject_id: str, action: Action) -> Subject:
    async with request.app[keys.SESSIONMAKER]() as session:
        subject = await session.get(Subject, subject_id)
    street = subject.street_id if subject is not None else None
    visible_or_404(principal_of(request), request.app[keys.TREE], action, street, "subject")
    assert subject is not None
    return subject


class LeaveIn(msgspec.Struct, forbid_unknown_fields=True):
    destination: Annotated[str, NOT_BLANK, msgspec.Meta(max_length=leave.DESTINATION_MAX)]
    ends_at: AwareTime
    starts_at: AwareTime | None = None  # default: now
    reason: Annotated[str, PLAIN, msgspec.Meta(max_length=leave.REASON_MAX)] | None = None


class LeaveOut(msgspec.Struct):
    id: int
    subject_id: str
    destination: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    state: LeaveState
    returned_at: datetime | None
    created_by: str


def leave_json(row: Leave) -> LeaveOut:
    """The row's own columns, read by name (``from_attributes``): one list of fields."""
    return msgspec.convert(row, LeaveOut, from_attributes=True)


class SuppressionIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, NOT_BLANK, msgspec.Meta(max_length=suppression.REASON_MAX)]
    until: AwareTime
    starts_at: AwareTime | None = None  # default: now
    kinds: list[AlarmKind] = []  # empty: every kind


class SuppressionOut(msgspec.Struct):
    id: int
    subject_id: str
    kinds: list[AlarmKind]
    reason: str
    starts_at: datetime
    until: datetime
    created_by: str
    revoked_at: datetime | None


def suppression_json(row: Suppression) -> SuppressionOut:
    return SuppressionOut(
        id=row.id,
        subject_id=row.subject_id,
        kinds=[AlarmKind(k) for k in sorted(suppression.parse_kinds(row.kinds))],
        reason=row.reason,
        starts_at=row.starts_at,
        until=row.until,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


class LeaveList(msgspec.Struct):
    items: list[LeaveOut]


class SuppressionList(msgspec.Struct):
    items: list[SuppressionOut]


@policy(Action.LEAVES_MANAGE, auth=(SESSION,))
@contract(
    "Approve a leave",
    path=SubjectPath,
    body=LeaveIn,
    response=LeaveOut,
    status=201,
    errors=(404,),
    description="Outside the city is allowed from `starts_at` until a return check-in; "
    f"`ends_at` in the future, at most {leave.MAX_LEAVE.days} days after the start. "
    "Audited `leave.create`.",
)
async def create_leave(request: web.Request, *, path: SubjectPath, body: LeaveIn) -> LeaveOut:
    subject = await _subject(request, path.subject_id, Action.LEAVES_MANAGE)
    new = leave.NewLeave(
        subject_id=subject.id,
        destination=body.destination,
        ends_at=body.ends_at,
        starts_at=body.starts_at,
        reason=body.reason or "",
    )
    row = await leave.create_leave(request.app[ALERTS], new, actor=principal_of(request).actor)
    return leave_json(row)


@policy(Action.SUBJECTS_READ, auth=(SESSION,))
@contract("A subject's leaves", path=SubjectPath, response=LeaveList, errors=(404,))
async def list_leaves(request: web.Request, *, path: SubjectPath) -> LeaveList:
    subject = await _subject(request, path.subject_id, Action.SUBJECTS_READ)
    rows = await leave.recent_leaves(request.app[keys.SESSIONMAKER], subject.id)
    return LeaveList(items=[leave_json(r) for r in rows])


@policy(Action.SUPPRESSIONS_MANAGE, auth=(SESSION,))
@contract(
    "Suppress a subject's alarms",
    path=SubjectPath,
    body=SuppressionIn,
    response=SuppressionOut,
    status=201,
    errors=(404,),
    description="Alarms of the subject (of `kinds`; all when empty) are recorded as "
    "`suppressed` and never raised; `until` in the future, at most "
    f"{suppression.MAX_SUPPRESSION.days} days from now. "
    "Audited `suppression.create`.",
)
async def create_suppression(
    request: web.Request, *, path: SubjectPath, body: SuppressionIn
) -> SuppressionOut:
    subject = await _subject(request, path.subject_id, Action.SUPPRESSIONS_MANAGE)
    new = suppression.NewSuppression(
        subject_id=subject.id,
        reason=body.reason,
        until=body.until,
        starts_at=body.starts_at,
        kinds=body.kinds,
    )
    row = await suppression.create_suppression(
        request.app[ALERTS], new, actor=principal_of(request).actor
    )
    return suppression_json(row)


@policy(Action.SUBJECTS_READ, auth=(SESSION,))
@contract("A subject's suppressions", path=SubjectPath, response=SuppressionList, errors=(404,))
async def list_suppressions(request: web.Request, *, path: SubjectPath) -> SuppressionList:
    subject = await _subject(request, path.subject_id, Action.SUBJECTS_READ)
    rows = await suppression.recent_suppressions(request.app[keys.SESSIONMAKER], subject.id)
    return SuppressionList(items=[suppression_json(r) for r in rows])


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/subjects/{subject_id}/leaves", create_leave)
    r.add_get("/api/v1/subjects/{subject_id}/leaves", list_leaves)
    r.add_post("/api/v1/subjects/{subject_id}/suppressions", create_suppression)
    r.add_get("/api/v1/subjects/{subject_id}/suppressions", list_suppressions)
