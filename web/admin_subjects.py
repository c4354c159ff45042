"""Subjects for the administrator: list and search, edit level and home street, CSV import
with a report for every row, CSV export.

``GET /api/v1/admin/subjects?q=&page=&page_size=`` lists the subjects in the caller's
jurisdiction; ``PATCH /api/v1/admin/subjects/{subject_id}`` changes a level or home street
(audited ``subject.update`` with before and after). Both a change and an import take effect at
once: this instance's alarm engine reloads the subjects (so the deadline watcher checks them
against their new plan from the next closing window: a subject moved to strict today gets
tonight's strict windows) and ``subjects.changed`` on the bus makes every other instance do
the same (:func:`subjects_ctx`). ``GET /api/v1/admin/subjects.csv`` exports them in the
import's format (audited ``subject.export``).

``POST /api/v1/admin/subjects/import`` takes ``{"csv": "…"}`` with the header
``id,name,level,street_id`` (optional ``gender,id_number,phone``). Each row is checked on its
own: a good row creates the subject or updates its name, level and street (audited
``subject.create`` / ``subject.update`` with before and after); a bad row is reported with its
line number and reason and changes nothing. Good rows are stored together.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from sqlalchemy import func, or_, select

from center import audit
from center.authz import Action, authorize
from center.bus import BusMessage
from center.errors import NotFound, ValidationFailed
from center.models import Subject, SupervisionLevel
from center.topics import Event, Topic
from web import keys
from web.api_directory import PlaceId
from web.components import ALERTS
from web.contract import contract
from web.fields import MAX_PAGE, PG_INT_MAX, PLAIN
from web.policy import SESSION, policy, principal_of

_LOGGER = logging.getLogger(__name__)

REQUIRED = ("id", "name", "level", "street_id")
OPTIONAL = ("gender", "id_number", "phone")
_LIMITS = {"id": 64, "name": 64, "gender": 8, "id_number": 32, "phone": 32}


# The one text rule (center/text.py) plus carriage return: RFC 4180 and every spreadsheet
# end CSV lines with CRLF. Control characters inside a cell are still refused, per row.
CSV_TEXT = msgspec.Meta(
    pattern="^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$",
    description="CSV text; control characters other than newline, carriage return and tab "
    "are refused.",
)


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    csv: Annotated[str, CSV_TEXT, msgspec.Meta(max_length=1_000_000)]


class RowReport(msgspec.Struct):
    line: int
    id: str
    status: str  # created | updated | unchanged | rejected
    error: str = ""


class ImportReport(msgspec.Struct):
    created: int
    updated: int
    rejected: int
    rows: list[RowReport]


def _clean(value: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)


def _check(row: dict[str, str], request: web.Request) -> str:
    tree = request.app[keys.TREE]
    for name in REQUIRED:
        if not (row.get(name) or "").strip():
            return f"'{name}' is empty"
    for name, limit in _LIMITS.items():
        value = row.get(name) or ""
        if len(value) > limit:
            return f"'{name}' is longer than {limit} characters"
        if not _clean(value):
            return f"'{name}' holds control characters"
    if row["level"].strip() not in {str(x) for x in SupervisionLevel}:
        return f"'level' must be one of {', '.join(str(x) for x in SupervisionLevel)}"
    street = row["street_id"].strip()
    node = tree.get(street)
    if node is None or node.level != "street":
        return f"'street_id' {street!r} is not a street"
    if not authorize(principal_of(request), Action.SUBJECTS_WRITE, tree.path(street)):
        return f"'street_id' {street!r} is outside your jurisdiction"
    return ""


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Import subjects from CSV",
    body=ImportIn,
    response=ImportReport,
    errors=(422,),
    description="Header id,name,level,street_id[,gender,id_number,phone]; a report per row; "
    "bad rows change nothing, good rows are stored.",
)
async def import_subjects(request: web.Request, *, body: ImportIn) -> ImportReport:
    reader = csv.DictReader(io.StringIO(body.csv.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValidationFailed.of({"csv": f"the header lacks {', '.join(missing)}"})
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise ValidationFailed.of({"csv": f"unknown columns {', '.join(unknown)}"})
    app = request.app
    tree = app[keys.TREE]
    actor = principal_of(request).actor
    now = app[keys.CLOCK].now()
    reports: list[RowReport] = []
    seen: set[str] = set()
    stored: list[str] = []
    async with app[keys.SESSIONMAKER]() as session:
        for raw in reader:
            line = reader.line_num
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
            sid = row.get("id", "")
            error = _check(row, request)
            if not error and sid in seen:
                error = "the id appears twice in this file"
            if error:
                reports.append(RowReport(line, sid, "rejected", error))
                continue
            seen.add(sid)
            street = row["street_id"]
            node = tree.get(street)
            district = (node.parent_id if node else None) or street
            fields: dict[str, Any] = {
                "name": row["name"],
                "level": row["level"],
                "street_id": street,
                "district_id": district,
            }
            for name in OPTIONAL:
                if row.get(name):
                    fields[name] = row[name]
            subject = await session.get(Subject, sid)
            if subject is not None and not (
                subject.street_id in tree
                and authorize(
                    principal_of(request), Action.SUBJECTS_WRITE, tree.path(subject.street_id)
                )
            ):  # an id taken outside your jurisdiction: not yours to move in
                reports.append(RowReport(line, sid, "rejected", "'id' is already in use"))
                continue
            if subject is None:
                session.add(Subject(id=sid, active=True, created_at=now, **fields))
                action, status, details = "subject.create", "created", {
                    "level": row["level"], "street_id": street
                }  # fmt: skip
            else:
                before = {k: getattr(subject, k) for k in ("name", "level", "street_id")}
                same = all(getattr(subject, k) == v for k, v in fields.items())
                for k, v in fields.items():
                    setattr(subject, k, v)
                after = {k: getattr(subject, k) for k in ("name", "level", "street_id")}
                if same:
                    reports.append(RowReport(line, sid, "unchanged"))
                    continue
                action, status = "subject.update", "updated"
                details = {"before": before, "after": after}
            await audit.record(
                session,
                actor=actor,
                action=action,
                target_type="subject",
                target_id=sid,
                details=details,
                at=now,
            )
            reports.append(RowReport(line, sid, status))
            stored.append(sid)
        await session.commit()
    await changed(app, stored)
    count = {
        s: sum(1 for r in reports if r.status == s) for s in ("created", "updated", "rejected")
    }
    return ImportReport(count["created"], count["updated"], count["rejected"], reports)


async def _refresh(app: web.Application, ids: list[str]) -> None:
    async with app[keys.SESSIONMAKER]() as session:
        await app[ALERTS].directory.refresh(session, ids)


async def changed(app: web.Application, ids: Iterable[str]) -> None:
    """After the commit: this instance's engine reloads these subjects at once, the others
    through the bus (a subject's plan follows its level from the next closing window)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return
    await _refresh(app, wanted)
    try:
        await app[keys.BUS].publish(
            Topic.SETTINGS, Event.SUBJECTS_CHANGED, {"subjects": wanted[:5000]}
        )
    except Exception as exc:  # the others see the change at their next restart
        _LOGGER.warning("subject change not announced on the bus: %s", exc)


async def subjects_ctx(app: web.Application) -> AsyncIterator[None]:
    """Another instance changed subjects: reload them into this instance's engine."""

    def on_bus(msg: BusMessage) -> None:
        if msg.type != Event.SUBJECTS_CHANGED:
            return
        ids = [str(x) for x in (msg.data.get("subjects") or [])][:5000]
        if ids:
            with contextlib.suppress(RuntimeError):  # shutting down
                app[keys.TASKS].spawn("reload-subjects", _refresh(app, ids))

    unsubscribe = app[keys.BUS].subscribe(Topic.SETTINGS, on_bus)
    try:
        yield
    finally:
        unsubscribe()


# -- list, edit, export -----------------------------------------------------------------

Search = Annotated[str, PLAIN, msgspec.Meta(max_length=64)]
CSV_COLUMNS = REQUIRED + OPTIONAL


class SubjectQuery(msgspec.Struct, forbid_unknown_fields=True):
    q: Search = ""
    level: SupervisionLevel | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 50


class ExportQuery(msgspec.Struct, forbid_unknown_fields=True):
    q: Search = ""
    level: SupervisionLevel | None = None


class SubjectPath(msgspec.Struct):
    subject_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]


class SubjectChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    level: SupervisionLevel | None = None
    street_id: PlaceId | None = None


class NextWindow(msgspec.Struct):
    """The check-in window open now or next to open under the subject's plan."""

    start: datetime
    end: datetime
    deadline: datetime


class AdminSubject(msgspec.Struct):
    """``plan`` is the plan the deadline watcher checks the subject against: its own when
    ``plan_override`` (PUT …/plan), else its level's."""

    id: str
    name: str
    level: str
    street_id: str
    district_id: str
    active: bool
    plan: str = ""
    plan_override: bool = False
    next_window: NextWindow | None = None


class AdminSubjectPage(msgspec.Struct):
    items: list[AdminSubject]
    total: int
    page: int
    page_size: int


def _streets(request: web.Request) -> list[str]:
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    return [
        n.id
        for n in tree.by_level("street")
        if authorize(principal, Action.SUBJECTS_WRITE, tree.path(n.id))
    ]


def _filtered(request: web.Request, q: str, level: SupervisionLevel | None) -> Any:
    stmt = select(Subject).where(Subject.street_id.in_(_streets(request)))
    q = q.strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(Subject.id.like(like, escape="\\"), Subject.name.like(like, escape="\\"))
        )
    if level is not None:
        stmt = stmt.where(Subject.level == str(level))
    return stmt


def subject_out(app: web.Application, s: Subject) -> AdminSubject:
    """The subject with the plan this instance's watcher holds for it and its next window."""
    plan, override = app[ALERTS].plan_of(s.id, s.level)
    w = plan.next_window_closing_after(app[keys.CLOCK].now().timestamp())
    return AdminSubject(
        s.id,
        s.name,
        s.level,
        s.street_id,
        s.district_id,
        s.active,
        plan.spec,
        override,
        NextWindow(w.start_dt, w.end_dt, w.deadline_dt),
    )


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Subjects in scope, searched and paged",
    query=SubjectQuery,
    response=AdminSubjectPage,
    description="`q` matches the id or the name (a substring); ordered by id.",
)
async def list_subjects(request: web.Request, *, query: SubjectQuery) -> AdminSubjectPage:
    stmt = _filtered(request, query.q, query.level)
    async with request.app[keys.SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await session.scalars(
            stmt.order_by(Subject.id)
            .offset((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = [subject_out(request.app, s) for s in rows]
    return AdminSubjectPage(items, int(total or 0), query.page, query.page_size)


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Change a subject's level or home street",
    path=SubjectPath,
    body=SubjectChangeIn,
    response=AdminSubject,
    errors=(404, 422),
    description="Takes effect at once on every instance: the deadline watcher checks the "
    "subject against its new level's plan from the next closing window. Audited "
    "`subject.update` with before and after; the street must be a street in your "
    "jurisdiction (else 404, as for an unknown subject).",
)
async def change_subject(
    request: web.Request, *, path: SubjectPath, body: SubjectChangeIn
) -> AdminSubject:
    app = request.app
    tree = app[keys.TREE]
    principal = principal_of(request)
    streets = set(_streets(request))
    async with app[keys.SESSIONMAKER]() as session:
        subject = await session.get(Subject, path.subject_id)
        if subject is None or subject.street_id not in streets:
            raise NotFound("no such subject in your jurisdiction")
        if body.street_id is not None and body.street_id not in streets:
            raise NotFound("no such street in your jurisdiction")
        before = {"level": subject.level, "street_id": subject.street_id}
        if body.level is not None:
            subject.level = str(body.level)
        if body.street_id is not None:
            node = tree.get(body.street_id)
            subject.street_id = body.street_id
            subject.district_id = (node.parent_id if node else None) or body.street_id
        after = {"level": subject.level, "street_id": subject.street_id}
        out = subject_out(app, subject)
        if before == after:
            return out
        await audit.record(
            session,
            actor=principal.actor,
            action="subject.update",
            target_type="subject",
            target_id=subject.id,
            details={"before": before, "after": after},
            at=app[keys.CLOCK].now(),
        )
        await session.commit()
    await changed(app, [out.id])
    return subject_out(app, subject)  # after the reload: the new level's plan and window


@policy(Action.SUBJECTS_WRITE, auth=(SESSION,))
@contract(
    "Export subjects as CSV",
    query=ExportQuery,
    media_type="text/csv",
    description="The import's columns (id,name,level,street_id,gender,id_number,phone), so a "
    "file exported, edited and imported again round-trips. Audited `subject.export`.",
)
async def export_subjects(request: web.Request, *, query: ExportQuery) -> web.Response:
    app = request.app
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    async with app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(_filtered(request, query.q, query.level).order_by(Subject.id))
        n = 0
        for s in rows:
            writer.writerow([getattr(s, c) for c in CSV_COLUMNS])
            n += 1
        await audit.record(
            session,
            actor=principal_of(request).actor,
            action="subject.export",
            target_type="subject",
            target_id="",
            details={"q": query.q, "level": str(query.level or ""), "rows": n},
            at=app[keys.CLOCK].now(),
        )
        await session.commit()
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="subjects.csv"'},
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/admin/subjects/import", import_subjects)
    r.add_get("/api/v1/admin/subjects", list_subjects)
    r.add_get("/api/v1/admin/subjects.csv", export_subjects)
    r.add_patch("/api/v1/admin/subjects/{subject_id}", change_subject)
