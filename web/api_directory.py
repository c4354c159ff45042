"""Jurisdictions and subjects (the directory that ingestion and alarms reference)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec
from aiohttp import web
from sqlalchemy import func, select

from center import audit
from center.authz import Action
from center.models import Subject, SupervisionLevel
from center.scope import ScopeColumns, visible_or_404, within
from config.privacy import mask_id_number, mask_phone
from web import keys
from web.contract import contract
from web.fields import MAX_PAGE, PLAIN, column_length
from web.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from web.policy import DEVICE, SESSION, policy, principal_of

_SUBJECT_COLS: Final = ScopeColumns(district=Subject.district_id, street=Subject.street_id)
_ID_MAX: Final = column_length(Subject.id)
_NAME_MAX: Final = column_length(Subject.name)

SubjectId = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=_ID_MAX)]
PlaceId = Annotated[str, PLAIN, msgspec.Meta(max_length=column_length(Subject.street_id))]


class JurisdictionsOut(msgspec.Struct):
    items: list[dict[str, Any]]  # city → districts → streets (``children``), as the tree holds


@policy(Action.JURISDICTIONS_READ, auth=(SESSION, DEVICE))
@contract(
    "The jurisdiction tree",
    response=JurisdictionsOut,
    description="The whole city → district → street tree (names and positions are not personal).",
)
async def jurisdictions(request: web.Request) -> JurisdictionsOut:
    return JurisdictionsOut(items=request.app[keys.TREE].as_tree())


class Home(msgspec.Struct):
    lat: float
    lon: float | None


class SubjectOut(msgspec.Struct):
    """``id_number`` and ``phone`` are masked (``4403**********9091``, ``170****3194``)
    unless the caller asked to reveal them on the detail endpoint."""

    id: str
    name: str
    gender: str
    id_number: str
    phone: str
    level: SupervisionLevel
    street_id: str
    district_id: str
    home: Home | None
    active: bool


class Revealable(StrEnum):
    ID_NUMBER = "id_number"
    PHONE = "phone"


def subject_json(s: Subject, reveal: frozenset[Revealable] = frozenset()) -> SubjectOut:
    """Personal numbers masked but for the fields in ``reveal`` (the caller audits those)."""
    return SubjectOut(
        id=s.id,
        name=s.name,
        gender=s.gender,
        id_number=s.id_number if Revealable.ID_NUMBER in reveal else mask_id_number(s.id_number),
        phone=s.phone if Revealable.PHONE in reveal else mask_phone(s.phone),
        level=SupervisionLevel(s.level),
        street_id=s.street_id,
        district_id=s.district_id,
        home=Home(s.home_lat, s.home_lon) if s.home_lat is not None else None,
        active=s.active,
    )


class SubjectsQuery(msgspec.Struct):
    district: PlaceId | None = None
    street: PlaceId | None = None
    level: list[SupervisionLevel] = []
    q: Annotated[str, PLAIN, msgspec.Meta(max_length=max(_ID_MAX, _NAME_MAX))] = ""
    page: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE


class SubjectPage(msgspec.Struct):
    items: list[SubjectOut]
    total: int
    page: int
    page_size: int


@policy(Action.SUBJECTS_READ, auth=(SESSION,))
@contract(
    "Subjects in your jurisdiction",
    query=SubjectsQuery,
    response=SubjectPage,
    errors=(404,),
    description="Scoped to the caller's subtree; a `district` or `street` outside it (or "
    "unknown) is 404, as if it did not exist. `q` matches a name part or an exact id.",
)
async def subjects(request: web.Request, *, query: SubjectsQuery) -> SubjectPage:
    conds = within(
        principal_of(request),
        request.app[keys.TREE],
        Action.SUBJECTS_READ,
        _SUBJECT_COLS,
        district=query.district or None,
        street=query.street or None,
    )
    if query.level:
        conds.append(Subject.level.in_([str(v) for v in query.level]))
    q = query.q.strip()
    if q:
        conds.append(Subject.name.contains(q, autoescape=True) | (Subject.id == q))
    size = query.page_size
    async with request.app[keys.SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(Subject).where(*conds))
        rows = (
            await session.scalars(
                select(Subject)
                .where(*conds)
                .order_by(Subject.id)
                .offset((query.page - 1) * size)
                .limit(size)
            )
        ).all()
    return SubjectPage(
        items=[subject_json(s) for s in rows], total=total or 0, page=query.page, page_size=size
    )


class SubjectPath(msgspec.Struct):
    subject_id: SubjectId


class SubjectQuery(msgspec.Struct):
    reveal: list[Revealable] = []


@policy(Action.SUBJECTS_READ, auth=(SESSION,))
@contract(
    "One subject",
    path=SubjectPath,
    query=SubjectQuery,
    response=SubjectOut,
    errors=(404,),
    description="ID number and phone are masked; `?reveal=id_number,phone` shows them in "
    "full to staff in scope, and each reveal is written to the audit log (who, whose, what).",
)
async def subject_detail(
    request: web.Request, *, path: SubjectPath, query: SubjectQuery
) -> SubjectOut:
    principal = principal_of(request)
    reveal = frozenset(query.reveal)
    async with request.app[keys.SESSIONMAKER]() as session:
        s = await session.get(Subject, path.subject_id)
        visible_or_404(
            principal,
            request.app[keys.TREE],
            Action.SUBJECTS_READ,
            s.street_id if s else None,
            "subject",
        )
        assert s is not None
        if reveal:
            await audit.record(
                session,
                actor=principal.actor,
                action="subject.reveal",
                target_type="subject",
                target_id=s.id,
                details={"fields": sorted(reveal)},
                at=request.app[keys.CLOCK].now(),
            )
            await session.commit()
    return subject_json(s, reveal)
