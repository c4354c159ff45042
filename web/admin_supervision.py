"""The administrator's view of leaves and suppressions across subjects: list, end early.

Authorized as ``subjects.write`` (administrators, within their jurisdiction): a subject whose
street is outside it is answered as unknown. Ending is audited with before and after by
:func:`alerts.suppression.revoke_suppression` and :func:`alerts.leave.cancel_leave`, which
update this instance's engine at once (the others reload within a minute).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import select

from alerts import leave, suppression
from center.authz import Action, authorize
from center.errors import NotFound
from center.models import Subject
from web import keys
from web.api_supervision import (
    LeaveList,
    LeaveOut,
    SuppressionList,
    SuppressionOut,
    leave_json,
    suppression_json,
)
from web.components import ALERTS
from web.contract import contract
from web.fields import PG_INT_MAX
from web.policy import SESSION, policy, principal_of


class ItemPath(msgspec.Struct):
    item_id: Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)]


async def _visible_subjects(request: web.Request, subject_ids: set[str]) -> set[str]:
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    if not subject_ids:
        return set()
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(
            select(Subject.id, Subject.street_id).where(Subject.id.in_(subject_ids))
        )
        return {
            sid
            for sid, street in rows
            if street in tree and authorize(principal, Action.SUBJECTS_WRITE, tree.path(street))
        }


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract("Suppressions of every subject in scope", response=SuppressionList)
async def list_suppressions(request: web.Request) -> SuppressionList:
    rows = await suppression.suppressions_for_admin(request.app[keys.SESSIONMAKER])
    seen = await _visible_subjects(request, {r.subject_id for r in rows})
    return SuppressionList(items=[suppression_json(r) for r in rows if r.subject_id in seen])


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Revoke a suppression",
    path=ItemPath,
    response=SuppressionOut,
    errors=(404,),
    description="The subject's alarms are raised again from now. Audited "
    "`suppression.revoke`; revoking a revoked one answers the same record.",
)
async def revoke(request: web.Request, *, path: ItemPath) -> SuppressionOut:
    async with request.app[keys.SESSIONMAKER]() as session:
        found = await session.get(suppression.Suppression, path.item_id)
    if found is None or not await _visible_subjects(request, {found.subject_id}):
        raise NotFound("no such suppression in your jurisdiction")
    row = await suppression.revoke_suppression(
        request.app[ALERTS], path.item_id, actor=principal_of(request).actor
    )
    assert row is not None
    return suppression_json(row)


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract("Leaves of every subject in scope", response=LeaveList)
async def list_leaves(request: web.Request) -> LeaveList:
    rows = await leave.leaves_for_admin(request.app[keys.SESSIONMAKER])
    seen = await _visible_subjects(request, {r.subject_id for r in rows})
    return LeaveList(items=[leave_json(r) for r in rows if r.subject_id in seen])


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Cancel a leave",
    path=ItemPath,
    response=LeaveOut,
    errors=(404,),
    description="Outside the city is no longer allowed and no overdue return follows. "
    "Audited `leave.cancel`; a leave already ended is answered as it is.",
)
async def cancel(request: web.Request, *, path: ItemPath) -> LeaveOut:
    async with request.app[keys.SESSIONMAKER]() as session:
        found = await session.get(leave.Leave, path.item_id)
    if found is None or not await _visible_subjects(request, {found.subject_id}):
        raise NotFound("no such leave in your jurisdiction")
    row = await leave.cancel_leave(
        request.app[ALERTS], path.item_id, actor=principal_of(request).actor
    )
    assert row is not None
    return leave_json(row)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/admin/suppressions", list_suppressions)
    r.add_delete("/api/v1/admin/suppressions/{item_id}", revoke)
    r.add_get("/api/v1/admin/leaves", list_leaves)
    r.add_post("/api/v1/admin/leaves/{item_id}/cancel", cancel)
