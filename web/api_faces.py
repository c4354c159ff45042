"""HTTP API of face verification: a subject's baseline photos and its check-ins' faces.

``/api/v1/subjects/{subject_id}/faces``: officers (``faces.manage``) enrol a photo (a JPEG
body, or ``{"snapshot_id"}`` of one of the subject's spot-check snapshots), approve and
delete it; staff in scope (``faces.read``) list the baseline. A subject outside the caller's
jurisdiction is 404, as an unknown one. Accuracy and tuning: docs/faces.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from alerts.actions import MAX_ID
from alerts.face_baseline import FaceBaselines
from center.authz import Action
from center.errors import Unavailable
from web import keys
from web.api_spotchecks import SubjectId
from web.contract import JpegOr, contract
from web.policy import SESSION, policy, principal_of

Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
SnapshotId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]


def baselines_of(app: web.Application) -> FaceBaselines:
    try:
        return app[keys.FACE_BASELINES]
    except KeyError:
        raise Unavailable("face verification is not running") from None


class SubjectPath(msgspec.Struct):
    subject_id: SubjectId


class FacePath(msgspec.Struct):
    subject_id: SubjectId
    face_id: Id


class FromSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    snapshot_id: SnapshotId


class FaceOut(msgspec.Struct):
    id: int
    subject_id: str
    sha256: str
    state: str
    source: str
    created_by: str
    created_at: str
    approved_by: str | None
    approved_at: str | None


class FaceList(msgspec.Struct):
    faces: list[FaceOut]


@policy(Action.FACES_MANAGE, auth=(SESSION,))
@contract(
    "Enrol a baseline photo",
    path=SubjectPath,
    body=JpegOr(FromSnapshot),
    response=FaceOut,
    status=201,
    errors=(404, 409, 413, 422, 429),
    description='A JPEG body (`Content-Type: image/jpeg`) or `{"snapshot_id"}` of one of '
    "the subject's spot-check snapshots. The photo must show exactly one usable face (422 "
    "with `details.outcome` otherwise); stored with its SHA-256, `pending` until approved. "
    "At most five per subject (409); 429 with Retry-After while the face queue is full.",
)
async def add_face(
    request: web.Request, *, path: SubjectPath, body: bytes | FromSnapshot
) -> FaceOut:
    service = baselines_of(request.app)
    principal = principal_of(request)
    if isinstance(body, FromSnapshot):
        out = await service.add(principal, path.subject_id, snapshot_id=body.snapshot_id)
    else:
        out = await service.add(principal, path.subject_id, jpeg=body)
    return msgspec.convert(out, FaceOut)


@policy(Action.FACES_MANAGE, auth=(SESSION,))
@contract(
    "Approve a baseline photo",
    path=FacePath,
    response=FaceOut,
    errors=(404,),
    description="Only approved photos are compared with; approving twice changes nothing.",
)
async def approve_face(request: web.Request, *, path: FacePath) -> FaceOut:
    out = await baselines_of(request.app).approve(
        principal_of(request), path.subject_id, path.face_id
    )
    return msgspec.convert(out, FaceOut)


@policy(Action.FACES_READ, auth=(SESSION,))
@contract("A subject's baseline photos", path=SubjectPath, response=FaceList, errors=(404,))
async def list_faces(request: web.Request, *, path: SubjectPath) -> FaceList:
    out = await baselines_of(request.app).baseline(principal_of(request), path.subject_id)
    return FaceList([msgspec.convert(o, FaceOut) for o in out])


@policy(Action.FACES_MANAGE, auth=(SESSION,))
@contract(
    "Delete a baseline photo",
    path=FacePath,
    response=FaceOut,
    errors=(404,),
    description="Answers the deleted record; the file goes too, the audit log keeps its SHA-256.",
)
async def delete_face(request: web.Request, *, path: FacePath) -> FaceOut:
    out = await baselines_of(request.app).delete(
        principal_of(request), path.subject_id, path.face_id
    )
    return msgspec.convert(out, FaceOut)


class CheckinsQuery(msgspec.Struct):
    since: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class FaceOutcome(msgspec.Struct):
    outcome: str
    distance: float | None = None


class CheckinOut(msgspec.Struct):
    id: int
    event_id: str
    subject_id: str
    at: str
    source: str
    lat: float | None
    lon: float | None
    late: bool
    face: FaceOutcome | None
    """None: the check-in carried no photo. ``pending`` until the face workers decide."""
    face_alarm_id: int | None


class CheckinList(msgspec.Struct):
    checkins: list[CheckinOut]


@policy(Action.FACES_READ, auth=(SESSION,))
@contract(
    "A subject's check-ins with their face outcomes",
    path=SubjectPath,
    query=CheckinsQuery,
    response=CheckinList,
    errors=(404, 422),
    description="Newest first, at or after `since` (RFC 3339 with an offset); each with "
    "its `face` (`outcome`, `distance`) once decided, and the `face_mismatch` alarm if one "
    "was raised. Staff in the subject's jurisdiction.",
)
async def list_checkins(
    request: web.Request, *, path: SubjectPath, query: CheckinsQuery
) -> CheckinList:
    try:
        verifier = request.app[keys.FACE_VERIFIER]
    except KeyError:
        raise Unavailable("face verification is not running") from None
    out = await verifier.checkins(principal_of(request), path.subject_id, query.since, query.limit)
    return CheckinList([msgspec.convert(o, CheckinOut) for o in out])


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/subjects/{subject_id}/faces", add_face)
    r.add_get("/api/v1/subjects/{subject_id}/faces", list_faces)
    r.add_post("/api/v1/subjects/{subject_id}/faces/{face_id}/approve", approve_face)
    r.add_delete("/api/v1/subjects/{subject_id}/faces/{face_id}", delete_face)
    r.add_get("/api/v1/subjects/{subject_id}/checkins", list_checkins)
