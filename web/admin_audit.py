"""The audit viewer's API: search, chain verification, CSV export with the chain hashes.

Search filters by actor, action and object (``target_type:target_id`` or either part), and a
time range; pages go backwards by id (``before``). The CSV carries ``prev_hash`` and ``hash`` of
every row, so an exported range can be checked against the live chain (or another export)
entry by entry. Verification is the same walk as ``python run.py verify-audit``.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web
from sqlalchemy import Select, select

from center.audit import verify_chain
from center.authz import Action
from center.models import AuditEntry
from web import keys
from web.contract import contract
from web.fields import PG_INT_MAX, PLAIN
from web.policy import SESSION, policy

Filter = Annotated[str, PLAIN, msgspec.Meta(max_length=128)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
CSV_MAX = 100_000


class AuditQuery(msgspec.Struct, forbid_unknown_fields=True):
    actor: Filter | None = None
    action: Filter | None = None
    object: Filter | None = None
    since: AwareTime | None = None
    until: AwareTime | None = None
    before: Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class AuditCsvQuery(msgspec.Struct, forbid_unknown_fields=True):
    actor: Filter | None = None
    action: Filter | None = None
    object: Filter | None = None
    since: AwareTime | None = None
    until: AwareTime | None = None


class AuditRow(msgspec.Struct):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    details: str
    prev_hash: str
    hash: str


class AuditPage(msgspec.Struct):
    items: list[AuditRow]
    next_before: int | None


class ChainCheck(msgspec.Struct):
    ok: bool
    checked: int
    broken_id: int | None
    reason: str


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filtered(q: AuditQuery | AuditCsvQuery) -> Select[tuple[AuditEntry]]:
    stmt = select(AuditEntry)
    if q.actor:
        stmt = stmt.where(AuditEntry.actor.like(_like(q.actor), escape="\\"))
    if q.action:
        stmt = stmt.where(AuditEntry.action.like(_like(q.action), escape="\\"))
    if q.object:
        kind, sep, ident = q.object.partition(":")
        if sep:
            if kind:
                stmt = stmt.where(AuditEntry.target_type == kind)
            if ident:
                stmt = stmt.where(AuditEntry.target_id.like(_like(ident), escape="\\"))
        else:
            stmt = stmt.where(
                AuditEntry.target_id.like(_like(q.object), escape="\\")
                | (AuditEntry.target_type == q.object)
            )
    if q.since:
        stmt = stmt.where(AuditEntry.at >= q.since)
    if q.until:
        stmt = stmt.where(AuditEntry.at < q.until)
    return stmt


def _row(e: AuditEntry) -> AuditRow:
    return AuditRow(
        id=e.id,
        at=e.at,
        actor=e.actor,
        action=e.action,
        target_type=e.target_type,
        target_id=e.target_id,
        details=e.details,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


@policy(Action.AUDIT_READ, auth=(SESSION,))
@contract("Search the audit log", query=AuditQuery, response=AuditPage, description="Newest first.")
async def search(request: web.Request, *, query: AuditQuery) -> AuditPage:
    stmt = _filtered(query)
    if query.before:
        stmt = stmt.where(AuditEntry.id < query.before)
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(query.limit + 1)
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = list(await session.scalars(stmt))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return AuditPage(items=[_row(e) for e in rows], next_before=rows[-1].id if more else None)


@policy(Action.AUDIT_READ, auth=(SESSION,))
@contract(
    "Verify the audit chain",
    response=ChainCheck,
    description="The same check as `python run.py verify-audit`; the first broken entry if any.",
)
async def verify(request: web.Request) -> ChainCheck:
    async with request.app[keys.SESSIONMAKER]() as session:
        result = await verify_chain(session)
    return ChainCheck(result.ok, result.checked, result.broken_id, result.reason)


@policy(Action.AUDIT_READ, auth=(SESSION,))
@contract(
    "Export audit entries as CSV",
    query=AuditCsvQuery,
    media_type="text/csv",
    description=f"Oldest first, with prev_hash and hash; at most {CSV_MAX} rows.",
)
async def export_csv(request: web.Request, *, query: AuditCsvQuery) -> web.Response:
    stmt = _filtered(query).order_by(AuditEntry.id).limit(CSV_MAX)
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = list(await session.scalars(stmt))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(AuditRow.__struct_fields__))
    for e in rows:
        writer.writerow(
            [e.id, e.at.isoformat(), e.actor, e.action, e.target_type, e.target_id, e.details,
             e.prev_hash, e.hash]
        )  # fmt: skip
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/audit", search)
    r.add_get("/api/v1/audit/verify", verify)
    r.add_get("/api/v1/audit.csv", export_csv)
