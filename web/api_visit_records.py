"""HTTP API of the visit records: a prison's inmates and their relatives.

``/api/v1/visits/inmates`` lists the inmates of the caller's prisons with their relatives
(status, ban end, whether the photo and the proof of relationship are on file);
``POST /api/v1/visits/inmates/{inmate_id}/relatives`` registers a relative (``pending``);
``PUT …/relatives/{id}/photo`` and ``…/proof`` attach the files (multipart ``file``);
``POST …/relatives/{id}/verify`` lets the relative be booked; ``…/unban`` lifts a ban early.
Another prison's inmates and relatives are 404, as unknown ones. Thin handlers over
:class:`center.visits.records.VisitRecords`; the flow is in docs/visits.md.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from aiohttp import BodyPartReader, web

from alerts.evidence import sniff
from center.authz import Action
from center.errors import BadRequest, Unavailable
from center.visits.models import Inmate, Relative
from center.visits.records import (
    FileKind,
    InmateRecord,
    PrisonRules,
    RelativeRecord,
    VisitRecords,
)
from web import keys
from web.contract import Multipart, contract
from web.fields import NOT_BLANK, PG_INT_MAX, PLAIN, column_length
from web.policy import SESSION, policy, principal_of

Id = Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)]
InmateId = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=column_length(Inmate.id))]
Name = Annotated[str, NOT_BLANK, msgspec.Meta(max_length=column_length(Relative.name))]
Relationship = Annotated[
    str, NOT_BLANK, msgspec.Meta(max_length=column_length(Relative.relationship))
]
IdNumber = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9 -]{4,30}$")]
_MAX_REASON: Final = 2000
Reason = Annotated[str, NOT_BLANK, msgspec.Meta(max_length=_MAX_REASON)]


def records_of(app: web.Application) -> VisitRecords:
    try:
        return app[keys.VISIT_RECORDS]
    except KeyError:
        raise Unavailable("visits are not running") from None


class InmateList(msgspec.Struct):
    inmates: list[InmateRecord]


class InmatesQuery(msgspec.Struct):
    prison_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)] | None = None
    q: Annotated[str, PLAIN, msgspec.Meta(max_length=64)] = ""
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class InmatePath(msgspec.Struct):
    inmate_id: InmateId


class RelativePath(msgspec.Struct):
    relative_id: Id


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    relationship: Relationship
    """In the relative's words: 母亲, 妻子, 儿子…"""
    id_number: IdNumber
    """An 18-character resident ID number, checked (birth date, check digit); stored only as
    SHA-256 and its last four digits."""
    phone: Phone | None = None
    """For the webhook notices (SMS); digits, spaces, dashes, an optional leading +."""


class PrisonPath(msgspec.Struct):
    prison_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)]


class PrisonList(msgspec.Struct):
    prisons: list[PrisonRules]


class RulesIn(msgspec.Struct, forbid_unknown_fields=True):
    """Only the rules named change; ``null`` returns one to its setting."""

    visit_minutes: Annotated[int, msgspec.Meta(ge=1, le=240)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    visit_max_relatives: Annotated[int, msgspec.Meta(ge=1, le=10)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    visit_monthly_quota: Annotated[int, msgspec.Meta(ge=0, le=31)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    visit_lead_working_days: (
        Annotated[int, msgspec.Meta(ge=0, le=60)] | msgspec.UnsetType | None
    ) = msgspec.UNSET


class UnbanIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "The inmates of one's prisons, with their relatives",
    query=InmatesQuery,
    response=InmateList,
    description="`q` matches an inmate's id or name or a relative's name. Visit staff see "
    "the prisons they work for; admin and duty every prison.",
)
async def list_inmates(request: web.Request, *, query: InmatesQuery) -> InmateList:
    found = await records_of(request.app).inmates(
        principal_of(request), prison_id=query.prison_id, q=query.q, limit=query.limit
    )
    return InmateList(found)


@policy(Action.VISITS_BOOK, auth=(SESSION,))
@contract(
    "Register a relative of an inmate",
    path=InmatePath,
    body=RegisterIn,
    response=RelativeRecord,
    status=201,
    errors=(404, 409, 422),
    description="The relative starts `pending`: attach the photo and the proof of "
    "relationship, then verify. 409 when the ID number is already registered for the inmate; "
    "422 for an ID number that is not a valid resident ID (its check digit included).",
)
async def register(request: web.Request, *, path: InmatePath, body: RegisterIn) -> RelativeRecord:
    record = await records_of(request.app).register(
        principal_of(request),
        path.inmate_id,
        name=body.name.strip(),
        relationship=body.relationship.strip(),
        id_number=body.id_number,
        phone=(body.phone or "").strip(),
    )
    return record


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract("One relative", path=RelativePath, response=RelativeRecord, errors=(404,))
async def get_relative(request: web.Request, *, path: RelativePath) -> RelativeRecord:
    return await records_of(request.app).relative(principal_of(request), path.relative_id)


async def _attach(request: web.Request, relative_id: int, kind: FileKind) -> RelativeRecord:
    records = records_of(request.app)
    principal = principal_of(request)
    await records.relative(principal, relative_id)  # 404 before reading a body
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("upload the file as multipart/form-data with a 'file' field")
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart bodies are not accepted")
        if part.name == "file":
            return await records.attach(principal, relative_id, kind, part)
        await part.release()
    raise BadRequest("no 'file' field in the upload")


@policy(Action.VISITS_BOOK, auth=(SESSION,))
@contract(
    "Attach a relative's photo",
    path=RelativePath,
    body=Multipart({"file": "JPEG or PNG (by content)"}, required=("file",)),
    response=RelativeRecord,
    errors=(400, 404, 413, 415),
    description="The face staff compare with the live video before admitting; at most "
    "`evidence_max_bytes`. Replaces an earlier photo (the audit entry keeps both SHA-256).",
)
async def put_photo(request: web.Request, *, path: RelativePath) -> RelativeRecord:
    return await _attach(request, path.relative_id, "photo")


@policy(Action.VISITS_BOOK, auth=(SESSION,))
@contract(
    "Attach a relative's proof of relationship",
    path=RelativePath,
    body=Multipart({"file": "JPEG, PNG or PDF (by content)"}, required=("file",)),
    response=RelativeRecord,
    errors=(400, 404, 413, 415),
    description="A household register page or a certificate; at most `evidence_max_bytes`.",
)
async def put_proof(request: web.Request, *, path: RelativePath) -> RelativeRecord:
    return await _attach(request, path.relative_id, "proof")


async def _download(request: web.Request, relative_id: int, kind: FileKind) -> web.StreamResponse:
    file = await records_of(request.app).open_file(principal_of(request), relative_id, kind)
    with file.open("rb") as fh:
        head = fh.read(8)
    return web.FileResponse(
        file,
        headers={
            "Content-Type": sniff(head) or "application/octet-stream",
            "Content-Disposition": f'inline; filename="relative-{relative_id}-{kind}"',
            "X-Content-SHA256": file.name,
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "A relative's photo",
    path=RelativePath,
    media_type="image/jpeg",
    errors=(404,),
    description="For visit staff of the inmate's prison (the monitor shows it beside the "
    "live video); never for the relative's own guest session.",
)
async def get_photo(request: web.Request, *, path: RelativePath) -> web.StreamResponse:
    return await _download(request, path.relative_id, "photo")


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "A relative's proof of relationship",
    path=RelativePath,
    media_type="application/octet-stream",
    errors=(404,),
)
async def get_proof(request: web.Request, *, path: RelativePath) -> web.StreamResponse:
    return await _download(request, path.relative_id, "proof")


@policy(Action.VISITS_APPROVE, auth=(SESSION,))
@contract(
    "Verify a relative",
    path=RelativePath,
    response=RelativeRecord,
    errors=(404, 409),
    description="Identity and relationship checked (real-person verification at the first "
    "application): the relative may be booked. 409 while the photo or the proof is missing "
    "(`details.missing`) or when the relative is not pending.",
)
async def verify(request: web.Request, *, path: RelativePath) -> RelativeRecord:
    return await records_of(request.app).verify(principal_of(request), path.relative_id)


@policy(Action.VISITS_APPROVE, auth=(SESSION,))
@contract(
    "Lift a relative's ban early",
    path=RelativePath,
    body=UnbanIn,
    response=RelativeRecord,
    errors=(404, 409, 422),
    description="A ban ends on its date by itself; this ends it now, with a reason (audited).",
)
async def unban(request: web.Request, *, path: RelativePath, body: UnbanIn) -> RelativeRecord:
    record = await records_of(request.app).lift_ban(
        principal_of(request), path.relative_id, body.reason.strip()
    )
    return record


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "The visit rules of one's prisons",
    response=PrisonList,
    description="Per prison, `own` (what it has set; null: the `visit_*` setting) and "
    "`effective` (what bookings follow).",
)
async def list_prisons(request: web.Request) -> PrisonList:
    return PrisonList(await records_of(request.app).prisons(principal_of(request)))


@policy(Action.VISITS_APPROVE, auth=(SESSION,))
@contract(
    "Set a prison's visit rules",
    path=PrisonPath,
    body=RulesIn,
    response=PrisonRules,
    errors=(404, 422),
    description="Length (minutes), relatives per visit, visits per month and lead time in "
    "working days; null returns a rule to its setting. New bookings follow them at once; "
    "booked visits keep the length they were booked with. Audited with before and after.",
)
async def put_rules(request: web.Request, *, path: PrisonPath, body: RulesIn) -> PrisonRules:
    changes = {
        f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not msgspec.UNSET
    }
    return await records_of(request.app).set_rules(principal_of(request), path.prison_id, changes)


def add_routes(app: web.Application) -> None:
    """Before :mod:`web.api_visits`: ``/api/v1/visits/inmates`` must not be read as a
    visit id."""
    r = app.router
    r.add_get("/api/v1/visits/inmates", list_inmates)
    r.add_get("/api/v1/visits/prisons", list_prisons)
    r.add_put("/api/v1/visits/prisons/{prison_id}/rules", put_rules)
    r.add_post("/api/v1/visits/inmates/{inmate_id}/relatives", register)
    r.add_get("/api/v1/visits/relatives/{relative_id}", get_relative)
    r.add_put("/api/v1/visits/relatives/{relative_id}/photo", put_photo)
    r.add_get("/api/v1/visits/relatives/{relative_id}/photo", get_photo)
    r.add_put("/api/v1/visits/relatives/{relative_id}/proof", put_proof)
    r.add_get("/api/v1/visits/relatives/{relative_id}/proof", get_proof)
    r.add_post("/api/v1/visits/relatives/{relative_id}/verify", verify)
    r.add_post("/api/v1/visits/relatives/{relative_id}/unban", unban)
