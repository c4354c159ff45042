"""HTTP API of video spot-checks (视频点验): ``/api/v1/spotchecks``.

Thin handlers over :class:`alerts.spotcheck.SpotCheckService`; each declares its contract.
Officers (``spotchecks.run``) start, challenge, snapshot, judge and cancel spot-checks of
subjects in their subtree — others' are 404, as unknown ones. The subject's own login
(``spotchecks.answer``) answers or declines its own call. Flow and the app's way in:
docs/spotchecks.md.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

import msgspec
from aiohttp import web

from alerts.actions import MAX_ID
from alerts.spotcheck import SpotCheckService
from alerts.spotcheck_campaign import CampaignOut
from alerts.spotcheck_models import FailReason, SpotCheckState
from alerts.spotcheck_view import SpotCheckOut, SpotCheckPage
from center.alarm_vocab import AlarmKind
from center.authz import Action
from center.errors import EvidenceCorrupt, NotFound, Unavailable
from center.models import Role, Subject
from media.recorder import sha256_file
from web import keys
from web.contract import contract, validation_error
from web.fields import PLAIN, column_length
from web.policy import SESSION, policy, principal_of

_MAX_NOTE: Final = 4000
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
SubjectId = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=column_length(Subject.id))]
Note = Annotated[str, PLAIN, msgspec.Meta(max_length=_MAX_NOTE)]


def service_of(app: web.Application) -> SpotCheckService:
    try:
        return app[keys.SPOTCHECKS]
    except KeyError:
        raise Unavailable("spot-checks are not running") from None


class StartIn(msgspec.Struct, forbid_unknown_fields=True):
    subject_id: SubjectId
    alarm_id: Id | None = None


class SpotCheckPath(msgspec.Struct):
    spotcheck_id: Id


class SnapshotPath(msgspec.Struct):
    spotcheck_id: Id
    item_id: Id


class ListQuery(msgspec.Struct):
    state: SpotCheckState | None = None
    subject_id: SubjectId | None = None
    date: date | None = None
    alarm_id: Id | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class ChallengeIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["digits", "gesture"] | None = None
    """None: the server draws the kind too."""


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class ResultIn(msgspec.Struct, forbid_unknown_fields=True):
    result: Literal["passed", "failed"]
    reason: FailReason | None = None
    note: Note = ""
    alarm_kind: AlarmKind | None = None
    """With ``failed``: raise this alarm (``face_mismatch``, ``out_of_bounds``,
    ``separation``) in the same step; an officer confirms or excuses it in the workflow."""


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    note: Note = ""


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] | None = None
    location_error: Annotated[str, PLAIN, msgspec.Meta(max_length=200)] = ""
    """Why no location came (the browser's geolocation error), kept on the record."""


@policy(Action.SPOTCHECKS_RUN, auth=(SESSION,))
@contract(
    "Start a spot-check",
    body=StartIn,
    response=SpotCheckOut,
    status=201,
    errors=(404, 409, 422),
    description="Rings the subject (state `ringing`, `spotcheck_ring_s`); with `alarm_id` "
    "the spot-check and its evidence go on that alarm's timeline. 404 for a subject or "
    "alarm outside the caller's jurisdiction; 409 while the subject has an open one.",
)
async def start(request: web.Request, *, body: StartIn) -> SpotCheckOut:
    return await service_of(request.app).start(
        principal_of(request), body.subject_id, body.alarm_id
    )


@policy(Action.SPOTCHECKS_READ, auth=(SESSION,))
@contract(
    "Spot-checks",
    query=ListQuery,
    response=SpotCheckPage,
    errors=(404, 422),
    description="Newest first, in the caller's jurisdiction (a subject: its own); `date` is "
    "a local day of the center's time zone.",
)
async def list_spotchecks(request: web.Request, *, query: ListQuery) -> SpotCheckPage:
    if query.date is not None and not 1 < query.date.year < 9999:
        raise validation_error({"date": "a day between years 2 and 9998"})
    return await service_of(request.app).find(
        principal_of(request),
        state=query.state,
        subject_id=query.subject_id,
        day=query.date,
        alarm_id=query.alarm_id,
        limit=query.limit,
    )


@policy(Action.SPOTCHECKS_READ, auth=(SESSION,))
@contract(
    "One spot-check with its record",
    path=SpotCheckPath,
    response=SpotCheckOut,
    errors=(404,),
    description="Attempts, challenges, snapshots (SHA-256, URL), recordings, answer "
    "location and distance from home, result, and every item of the log.",
)
async def get_spotcheck(request: web.Request, *, path: SpotCheckPath) -> SpotCheckOut:
    return await service_of(request.app).get(principal_of(request), path.spotcheck_id)


@policy(Action.SPOTCHECKS_RUN, auth=(SESSION,))
@contract(
    "Issue a live challenge",
    path=SpotCheckPath,
    body=ChallengeIn,
    response=SpotCheckOut,
    errors=(404, 409),
    description="The server draws four random digits or a gesture from `spotcheck_gestures`; "
    "the subject's page shows it for `spotcheck_challenge_s` (`spotcheck.challenge` event). "
    "A head turn or blink is then judged from the subject's video (a `liveness` item a few "
    "seconds later, and `liveness` on the record); other challenges get `undecided`.",
)
async def challenge(
    request: web.Request, *, path: SpotCheckPath, body: ChallengeIn
) -> SpotCheckOut:
    return await service_of(request.app).challenge(
        principal_of(request), path.spotcheck_id, body.kind
    )


@policy(Action.SPOTCHECKS_RUN, auth=(SESSION,))
@contract(
    "Take a snapshot of the subject's video",
    path=SpotCheckPath,
    body=Empty,
    response=SpotCheckOut,
    errors=(404, 409, 504),
    description="A server-side JPEG of the next keyframe, stored with its SHA-256; tied to "
    "the challenge shown at the time, and kept as evidence on the alarm if there is one.",
)
async def snapshot(request: web.Request, *, path: SpotCheckPath, body: Empty) -> SpotCheckOut:
    return await service_of(request.app).snapshot(principal_of(request), path.spotcheck_id)


@policy(Action.SPOTCHECKS_READ, auth=(SESSION,))
@contract(
    "Download a snapshot",
    path=SnapshotPath,
    media_type="image/jpeg",
    errors=(404,),
    description="The JPEG; its SHA-256 is re-checked against the record (X-Content-SHA256).",
)
async def snapshot_file(request: web.Request, *, path: SnapshotPath) -> web.StreamResponse:
    file, sha = await service_of(request.app).snapshot_file(
        principal_of(request), path.spotcheck_id, path.item_id
    )
    try:
        actual = sha256_file(file)
    except OSError:
        actual = ""
    if actual != sha:
        raise EvidenceCorrupt("the snapshot is missing or does not match its recorded SHA-256")
    return web.FileResponse(
        file,
        headers={
            "Content-Type": "image/jpeg",
            "X-Content-SHA256": sha,
            "Cache-Control": "private, no-store",
        },
    )


@policy(Action.SPOTCHECKS_RUN, auth=(SESSION,))
@contract(
    "Record the result",
    path=SpotCheckPath,
    body=ResultIn,
    response=SpotCheckOut,
    errors=(404, 409, 422),
    description="`passed`, or `failed` with a `reason` (and optionally `alarm_kind` to raise "
    "that alarm at once). Never a sanction by itself: a raised alarm is confirmed or "
    "excused by an officer in the duty workflow. Ends the call; recordings go on the record.",
)
async def result(request: web.Request, *, path: SpotCheckPath, body: ResultIn) -> SpotCheckOut:
    return await service_of(request.app).result(
        principal_of(request),
        path.spotcheck_id,
        result=SpotCheckState(body.result),
        reason=body.reason,
        note=body.note.strip(),
        alarm_kind=body.alarm_kind,
    )


@policy(Action.SPOTCHECKS_RUN, auth=(SESSION,))
@contract(
    "Cancel a spot-check",
    path=SpotCheckPath,
    body=CancelIn,
    response=SpotCheckOut,
    errors=(404, 409),
)
async def cancel(request: web.Request, *, path: SpotCheckPath, body: CancelIn) -> SpotCheckOut:
    return await service_of(request.app).cancel(
        principal_of(request), path.spotcheck_id, body.note.strip()
    )


@policy(Action.SPOTCHECKS_ANSWER, auth=(SESSION,))
@contract(
    "Answer one's own spot-check (the subject)",
    path=SpotCheckPath,
    body=AnswerIn,
    response=SpotCheckOut,
    errors=(404, 409),
    description="State `live`; the location (if the phone shared it) is kept with its "
    "distance from home. Then join the room (`room_id`) with `rtc.join` on `/ws`.",
)
async def answer(request: web.Request, *, path: SpotCheckPath, body: AnswerIn) -> SpotCheckOut:
    if (body.lat is None) != (body.lon is None):
        raise validation_error({"lat": "lat and lon come together"})
    return await service_of(request.app).answer(
        principal_of(request),
        path.spotcheck_id,
        lat=body.lat,
        lon=body.lon,
        accuracy_m=body.accuracy_m,
        location_error=body.location_error,
    )


@policy(Action.SPOTCHECKS_ANSWER, auth=(SESSION,))
@contract(
    "Decline one's own spot-check (the subject)",
    path=SpotCheckPath,
    body=Empty,
    response=SpotCheckOut,
    errors=(404, 409),
    description="Counts as no answer: the next ring of the retry ladder, or `unreachable`.",
)
async def decline(request: web.Request, *, path: SpotCheckPath, body: Empty) -> SpotCheckOut:
    return await service_of(request.app).decline(principal_of(request), path.spotcheck_id)


class CampaignQuery(msgspec.Struct):
    date: date | None = None
    street: Annotated[str, PLAIN, msgspec.Meta(max_length=32)] | None = None


@policy(Action.SPOTCHECKS_READ, auth=(SESSION,))
@contract(
    "The random campaign's due and done list",
    query=CampaignQuery,
    response=CampaignOut,
    errors=(404, 422),
    description="Per street office: the subjects drawn for `date` (default today, local), "
    "each due at a time in the office's periods, and whether that day's spot-check is done "
    "(`passed`, `failed` or `unreachable`). Scoped to the caller's jurisdiction.",
)
async def campaign(request: web.Request, *, query: CampaignQuery) -> CampaignOut:
    principal = principal_of(request)
    if principal.role == Role.SUBJECT:
        raise NotFound("no campaign for this login")
    try:
        engine = request.app[keys.SPOTCHECK_CAMPAIGN]
    except KeyError:
        raise Unavailable("spot-checks are not running") from None
    day = query.date or engine.today()
    if not 1 < day.year < 9999:
        raise validation_error({"date": "a day between years 2 and 9998"})
    return await engine.progress(principal, day, street=query.street or None)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/spotchecks", start)
    r.add_get("/api/v1/spotchecks", list_spotchecks)
    r.add_get("/api/v1/spotchecks/campaign", campaign)
    r.add_get("/api/v1/spotchecks/{spotcheck_id}", get_spotcheck)
    r.add_post("/api/v1/spotchecks/{spotcheck_id}/challenge", challenge)
    r.add_post("/api/v1/spotchecks/{spotcheck_id}/snapshot", snapshot)
    r.add_get("/api/v1/spotchecks/{spotcheck_id}/snapshots/{item_id}", snapshot_file)
    r.add_post("/api/v1/spotchecks/{spotcheck_id}/result", result)
    r.add_post("/api/v1/spotchecks/{spotcheck_id}/cancel", cancel)
    r.add_post("/api/v1/spotchecks/{spotcheck_id}/answer", answer)
    r.add_post("/api/v1/spotchecks/{spotcheck_id}/decline", decline)
