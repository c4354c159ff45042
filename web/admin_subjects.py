"""Subjects imported from CSV by an administrator, with a report for every row.

``POST /api/v1/admin/subjects/import`` takes ``{"csv": "…"}`` with the header
``id,name,level,street_id`` (optional ``gender,id_number,phone``). Each row is checked on its
own: a good row creates the subject or updates its name, level and street (audited
``subject.create`` / ``subject.update`` with before and after); a bad row is reported with its
line number and reason and changes nothing. Good rows are stored together, and this
instance's alarm engine learns them at once (other instances on the subject's next event).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import msgspec
from aiohttp import web

from center import audit
from center.authz import Action, authorize
from center.errors import ValidationFailed
from center.models import Subject, SupervisionLevel
from web import keys
from web.components import ALERTS
from web.contract import contract
from web.fields import PLAIN
from web.policy import SESSION, policy, principal_of

REQUIRED = ("id", "name", "level", "street_id")
OPTIONAL = ("gender", "id_number", "phone")
_LIMITS = {"id": 64, "name": 64, "gender": 8, "id_number": 32, "phone": 32}


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    csv: Annotated[str, PLAIN, msgspec.Meta(max_length=1_000_000)]


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
            if subject is None:
                session.add(Subject(id=sid, active=True, created_at=now, **fields))
                action, status, details = "subject.create", "created", {
                    "level": row["level"], "street_id": street
                }  # fmt: skip
            else:
                before = {k: getattr(subject, k) for k in ("name", "level", "street_id")}
                for k, v in fields.items():
                    setattr(subject, k, v)
                after = {k: getattr(subject, k) for k in ("name", "level", "street_id")}
                if before == after and not any(k in fields for k in OPTIONAL):
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
        if stored:
            await app[ALERTS].directory.refresh(session, stored)
    count = {
        s: sum(1 for r in reports if r.status == s) for s in ("created", "updated", "rejected")
    }
    return ImportReport(count["created"], count["updated"], count["rejected"], reports)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/admin/subjects/import", import_subjects)
