"""Live check-in plans: an administrator changes a level's plan without a restart.

``PUT /api/v1/admin/plans/{level}`` stores the plan as the ``checkin_plans`` row named after
the level (which replaces the settings' default, :class:`alerts.plans.PlanBook`), audits it
with before and after, re-plans this instance's deadline watcher at once and announces
``plans.changed`` on the bus; every other instance re-reads the plans from the database and
re-plans its own watcher (:func:`plans_ctx`). A subject moved to a new plan today gets
tonight's windows of that plan.

``PUT``/``DELETE /api/v1/admin/subjects/{subject_id}/plan`` set and clear one subject's own
plan: a ``checkin_plans`` row ``subject:<id>`` and the ``subject_plans`` row assigning it,
which override the level's plan (:meth:`alerts.plans.PlanBook.plan_index`). They travel the
same way: this instance re-reads both tables at once, ``plans.changed`` on the bus makes the
others do it, and the watcher checks the subject against its new plan from the next closing
window.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import CheckinPlan, SubjectPlan
from alerts.plans import Plan, PlanError, override_plan_id
from center import audit
from center.authz import Action
from center.bus import BusMessage
from center.errors import NotFound, ValidationFailed
from center.models import Subject, SupervisionLevel
from center.scope import visible_or_404
from center.topics import Event, Topic
from web import keys
from web.admin_subjects import AdminSubject, SubjectPath, _streets, subject_out
from web.components import ALERTS
from web.contract import contract
from web.fields import NOT_BLANK
from web.policy import SESSION, policy, principal_of

_LOGGER = logging.getLogger(__name__)


class LevelPath(msgspec.Struct):
    level: SupervisionLevel


class PlanIn(msgspec.Struct, forbid_unknown_fields=True):
    spec: Annotated[str, NOT_BLANK, msgspec.Meta(max_length=512)]


class PlanOut(msgspec.Struct):
    level: str
    spec: str
    grace_s: int
    next_deadline: datetime | None


class PlanList(msgspec.Struct):
    items: list[PlanOut]


def _plan_out(app: web.Application, level: str) -> PlanOut:
    engine = app[ALERTS]
    idx = engine.plans.index(level)
    assert idx is not None
    plan = engine.plans.plans[idx]
    return PlanOut(level, plan.spec, plan.grace_s, engine.watcher.next_deadline_of(idx))


def _city_wide(request: web.Request) -> None:
    tree = request.app[keys.TREE]
    root = next((n.id for n in tree.roots()), None)
    visible_or_404(principal_of(request), tree, Action.SUBJECTS_WRITE, root, "plan")


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract("Check-in plans per supervision level", response=PlanList, errors=(404,))
async def list_plans(request: web.Request) -> PlanList:
    _city_wide(request)
    return PlanList(items=[_plan_out(request.app, str(level)) for level in SupervisionLevel])


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Change a level's check-in plan",
    path=LevelPath,
    body=PlanIn,
    response=PlanOut,
    errors=(404, 422),
    description="Syntax as the checkin_plan_* settings: '<daily|mon..sun> HH:MM-HH:MM' "
    "separated by ';'. Takes effect at once on every instance, without a restart; audited "
    "`plan.update` with before and after.",
)
async def put_plan(request: web.Request, *, path: LevelPath, body: PlanIn) -> PlanOut:
    _city_wide(request)
    app = request.app
    engine = app[ALERTS]
    level = str(path.level)
    spec = body.spec.strip()
    grace = engine.plans.cfg.grace_s
    try:
        Plan(level, spec, grace, engine.plans.cfg.tz)
    except PlanError as exc:
        raise ValidationFailed.of({"spec": str(exc)}) from None
    now = app[keys.CLOCK].now()
    idx = engine.plans.index(level)
    before = engine.plans.plans[idx].spec if idx is not None else ""
    async with app[keys.SESSIONMAKER]() as session:
        row = await session.get(CheckinPlan, level)
        if row is None:
            row = CheckinPlan(id=level, spec=spec, grace_s=None, updated_at=now)
            session.add(row)
        else:
            row.spec = spec
            row.updated_at = now
        await audit.record(
            session,
            actor=principal_of(request).actor,
            action="plan.update",
            target_type="plan",
            target_id=level,
            details={"before": {"spec": before}, "after": {"spec": spec}},
            at=now,
        )
        await session.commit()
    await engine.reload_plans()
    try:
        await app[keys.BUS].publish(Topic.SETTINGS, Event.PLANS_CHANGED, {"plans": [level]})
    except Exception as exc:  # the others still read it at their next restart
        _LOGGER.warning("plan change not announced on the bus: %s", exc)
    return _plan_out(app, level)


async def plans_ctx(app: web.Application) -> AsyncIterator[None]:
    """Another instance changed a plan: re-read them all and re-plan the watcher."""

    def on_bus(msg: BusMessage) -> None:
        if msg.type != Event.PLANS_CHANGED:
            return
        with contextlib.suppress(RuntimeError):  # shutting down: nothing to re-plan
            app[keys.TASKS].spawn("reload-plans", app[ALERTS].reload_plans())

    unsubscribe = app[keys.BUS].subscribe(Topic.SETTINGS, on_bus)
    try:
        yield
    finally:
        unsubscribe()


# -- one subject's own plan (overrides its level's) ---------------------------------------


async def _subject_in_scope(request: web.Request, session: AsyncSession, sid: str) -> Subject:
    subject = await session.get(Subject, sid)
    if subject is None or subject.street_id not in set(_streets(request)):
        raise NotFound("no such subject in your jurisdiction")
    return subject


async def _announce(app: web.Application, plan_id: str, subject_id: str) -> None:
    """This instance re-plans at once; the others re-read the plans through the bus."""
    await app[ALERTS].reload_plans()
    try:
        await app[keys.BUS].publish(
            Topic.SETTINGS, Event.PLANS_CHANGED, {"plans": [plan_id], "subjects": [subject_id]}
        )
    except Exception as exc:  # the others still read it at their next restart
        _LOGGER.warning("plan change not announced on the bus: %s", exc)


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Set one subject's own check-in plan",
    path=SubjectPath,
    body=PlanIn,
    response=AdminSubject,
    errors=(404, 422),
    description="Overrides the subject's level plan (same syntax as PUT /api/v1/admin/plans/"
    "{level}). Takes effect at once on every instance: the deadline watcher checks the "
    "subject against it from its next closing window. Audited `subject.plan` with before "
    "and after.",
)
async def put_subject_plan(
    request: web.Request, *, path: SubjectPath, body: PlanIn
) -> AdminSubject:
    app = request.app
    engine = app[ALERTS]
    spec = body.spec.strip()
    plan_id = override_plan_id(path.subject_id)
    try:
        Plan(plan_id, spec, engine.plans.cfg.grace_s, engine.plans.cfg.tz)
    except PlanError as exc:
        raise ValidationFailed.of({"spec": str(exc)}) from None
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        subject = await _subject_in_scope(request, session, path.subject_id)
        old, override = engine.plan_of(subject.id, subject.level)
        before = {"spec": old.spec, "override": override}
        row = await session.get(CheckinPlan, plan_id)
        if row is None:
            session.add(
                CheckinPlan(
                    id=plan_id,
                    spec=spec,
                    grace_s=None,
                    description=f"subject {subject.id}"[:255],
                    updated_at=now,
                )
            )
        else:
            row.spec, row.updated_at = spec, now
        await session.flush()  # the plan row before the assignment that refers to it
        assigned = await session.get(SubjectPlan, subject.id)
        if assigned is None:
            session.add(SubjectPlan(subject_id=subject.id, plan_id=plan_id, updated_at=now))
        else:
            assigned.plan_id, assigned.updated_at = plan_id, now
        await audit.record(
            session,
            actor=principal_of(request).actor,
            action="subject.plan",
            target_type="subject",
            target_id=subject.id,
            details={"before": before, "after": {"spec": spec, "override": True}},
            at=now,
        )
        await session.commit()
    await _announce(app, plan_id, subject.id)
    return subject_out(app, subject)


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Clear one subject's own check-in plan",
    path=SubjectPath,
    response=AdminSubject,
    errors=(404,),
    description="The subject follows its level's plan again, at once on every instance. "
    "Audited `subject.plan` with before and after; clearing a subject without its own plan "
    "changes nothing.",
)
async def delete_subject_plan(request: web.Request, *, path: SubjectPath) -> AdminSubject:
    app = request.app
    engine = app[ALERTS]
    now = app[keys.CLOCK].now()
    async with app[keys.SESSIONMAKER]() as session:
        subject = await _subject_in_scope(request, session, path.subject_id)
        assigned = await session.get(SubjectPlan, subject.id)
        if assigned is None:
            return subject_out(app, subject)
        old, _ = engine.plan_of(subject.id, subject.level)
        plan_id = assigned.plan_id
        await session.execute(delete(SubjectPlan).where(SubjectPlan.subject_id == subject.id))
        if plan_id == override_plan_id(subject.id):  # its own plan; a shared one stays
            await session.execute(delete(CheckinPlan).where(CheckinPlan.id == plan_id))
        level_plan = engine.plans.plans[engine.plans.plan_index("", subject.level)]
        await audit.record(
            session,
            actor=principal_of(request).actor,
            action="subject.plan",
            target_type="subject",
            target_id=subject.id,
            details={
                "before": {"spec": old.spec, "override": True},
                "after": {"spec": level_plan.spec, "override": False},
            },
            at=now,
        )
        await session.commit()
    await _announce(app, plan_id, subject.id)
    return subject_out(app, subject)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/plans", list_plans)
    app.router.add_put("/api/v1/admin/plans/{level}", put_plan)
    app.router.add_put("/api/v1/admin/subjects/{subject_id}/plan", put_subject_plan)
    app.router.add_delete("/api/v1/admin/subjects/{subject_id}/plan", delete_subject_plan)
