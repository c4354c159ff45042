"""Jurisdictions and subjects (the directory that ingestion and alarms reference)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from center.authz import authorize
from center.errors import Forbidden, NotFound, ValidationFailed
from center.models import Subject, SupervisionLevel
from web import keys
from web.jsonio import json_response
from web.paging import enum_param, paging
from web.policy import DEVICE, SESSION, policy, principal_of


@policy("jurisdictions.read", auth=(SESSION, DEVICE))
async def jurisdictions(request: web.Request) -> web.Response:
    """``GET /api/v1/jurisdictions``: the whole tree (names and positions are not personal)."""
    return json_response({"items": request.app[keys.TREE].as_tree()})


def subject_json(s: Subject) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "gender": s.gender,
        "id_number": s.id_number,
        "phone": s.phone,
        "level": s.level,
        "street_id": s.street_id,
        "district_id": s.district_id,
        "home": {"lat": s.home_lat, "lon": s.home_lon} if s.home_lat is not None else None,
        "active": s.active,
    }


def scope_filter(request: web.Request, district: str | None, street: str | None) -> list[Any]:
    """SQL conditions limiting subjects to the caller's subtree and the requested filters."""
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    conds: list[Any] = []
    own = principal.jurisdiction
    for value, name in ((district, "district"), (street, "street")):
        if value is None:
            continue
        if value not in tree:
            raise ValidationFailed(f"unknown {name} {value!r}", details={name: value})
        if not authorize(principal, "subjects.read", tree.path(value)):
            raise Forbidden(f"{name} {value} is outside your jurisdiction")
    if len(own) >= 3:
        conds.append(Subject.street_id == own[2])
    elif len(own) == 2:
        conds.append(Subject.district_id == own[1])
    if district:
        conds.append(Subject.district_id == district)
    if street:
        conds.append(Subject.street_id == street)
    return conds


@policy("subjects.read", auth=(SESSION,))
async def subjects(request: web.Request) -> web.Response:
    """``GET /api/v1/subjects?district=&street=&level=&q=&page=&page_size=`` (scoped)."""
    page, size = paging(request)
    levels = enum_param(request, "level", [str(v) for v in SupervisionLevel])
    conds = scope_filter(
        request, request.query.get("district") or None, request.query.get("street") or None
    )
    if levels:
        conds.append(Subject.level.in_(levels))
    q = request.query.get("q", "").strip()
    if q:
        conds.append((Subject.name.contains(q)) | (Subject.id == q))
    async with request.app[keys.SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(Subject).where(*conds))
        rows = (
            (
                await session.execute(
                    select(Subject)
                    .where(*conds)
                    .order_by(Subject.id)
                    .offset((page - 1) * size)
                    .limit(size)
                )
            )
            .scalars()
            .all()
        )
    return json_response(
        {
            "items": [subject_json(s) for s in rows],
            "total": total or 0,
            "page": page,
            "page_size": size,
        }
    )


@policy("subjects.read", auth=(SESSION,))
async def subject_detail(request: web.Request) -> web.Response:
    principal = principal_of(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        s = await session.get(Subject, request.match_info["subject_id"])
    if s is None or not authorize(
        principal, "subjects.read", request.app[keys.TREE].path(s.street_id)
    ):
        raise NotFound("no such subject in your jurisdiction")
    return json_response(subject_json(s))
