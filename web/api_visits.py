"""HTTP API of prison family visits (远程视频会见): ``/api/v1/visits``.

Thin handlers over :class:`center.visits.service.VisitService`; each declares its contract.
Visit staff book, approve, refuse and cancel the visits of their own prison (others' are
404); a relative exchanges a join code for a guest session (``POST /api/v1/visits/join``,
public). Flow, rules and settings: docs/visits.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web

from center.authz import Action
from center.errors import InvalidCredentials, RateLimited, TooManyAttempts, Unavailable
from center.visits.figures import MonthFigures, visits_csv
from center.visits.live import VisitLive
from center.visits.models import Inmate, TerminateReason, VisitPoint, VisitState
from center.visits.requests import BookingOut, RequestOut, VisitRequests
from center.visits.service import VisitService
from center.visits.view import JoinOut, VisitOut, VisitPage, VisitQualityOut
from web import keys
from web.api_auth import remote_of
from web.contract import contract, in_calendar, validation_error
from web.fields import NOT_BLANK, PG_INT_MAX, PLAIN, column_length
from web.policy import DEVICE, GUEST, SESSION, policy, principal_of, public

_MAX_REASON: Final = 2000
Id = Annotated[int, msgspec.Meta(ge=1, le=PG_INT_MAX)]
InmateId = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=column_length(Inmate.id))]
PointId = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=column_length(VisitPoint.id))]
Reason = Annotated[str, NOT_BLANK, msgspec.Meta(max_length=_MAX_REASON)]
Note = Annotated[str, PLAIN, msgspec.Meta(max_length=_MAX_REASON)]
Code = Annotated[str, msgspec.Meta(pattern="^[0-9]{6}$")]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Token = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{16,64}$")]


def service_of(app: web.Application) -> VisitService:
    try:
        return app[keys.VISITS]
    except KeyError:
        raise Unavailable("visits are not running") from None


class BookIn(msgspec.Struct, forbid_unknown_fields=True):
    inmate_id: InmateId
    relative_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=10)]
    starts_at: AwareTime
    visit_point_id: PointId | None = None
    privileged: bool = False
    """A lawyer's visit: never recorded, never monitored, not counted in the quota."""
    emergency: bool = False
    """Skips the lead time; needs two approvals by two staff members."""


class VisitPath(msgspec.Struct):
    visit_id: Id


class ListQuery(msgspec.Struct):
    prison_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)] | None = None
    date: date | None = None
    state: VisitState | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class RefuseIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Note = ""


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code | None = None
    token: Token | None = None
    """The token of the join link (``/join/<token>``), instead of the code."""


@policy(Action.VISITS_BOOK, auth=(SESSION,))
@contract(
    "Book a visit",
    body=BookIn,
    response=VisitOut,
    status=201,
    errors=(404, 409, 422),
    description="State `requested`. Refused with 409 `booking_refused` (details.rule: "
    "`lead_time`, `monthly_quota`, `banned`, `relative_pending`, `max_relatives`, "
    "`inmate_busy`, `terminal_busy`, `point_full`, `in_past`) and a message that says "
    "what to change. 404 for an inmate outside the caller's prison.",
)
async def book(request: web.Request, *, body: BookIn) -> VisitOut:
    in_calendar(body)
    return await service_of(request.app).book(
        principal_of(request),
        inmate_id=body.inmate_id,
        relative_ids=body.relative_ids,
        starts_at=body.starts_at,
        visit_point_id=body.visit_point_id,
        privileged=body.privileged,
        emergency=body.emergency,
    )


@policy(Action.VISITS_READ, auth=(SESSION, DEVICE))
@contract(
    "Visits",
    query=ListQuery,
    response=VisitPage,
    errors=(404, 422),
    description="Latest slot first, in the caller's prisons (a prison terminal's device "
    "token: its prison's, for the kiosk's day); `date` is a local day of the center's time "
    "zone.",
)
async def list_visits(request: web.Request, *, query: ListQuery) -> VisitPage:
    if query.date is not None and not 1 < query.date.year < 9999:
        raise validation_error({"date": "a day between years 2 and 9998"})
    return await service_of(request.app).find(
        principal_of(request),
        prison_id=query.prison_id,
        day=query.date,
        state=query.state,
        limit=query.limit,
    )


@policy(Action.VISITS_READ, auth=(SESSION, DEVICE, GUEST))
@contract(
    "One visit",
    path=VisitPath,
    response=VisitOut,
    errors=(404,),
    description="Staff: a visit of their prison. A relative's guest session (`Authorization: "
    "Bearer vg_…` from `POST /api/v1/visits/join`): its own visit only.",
)
async def get_visit(request: web.Request, *, path: VisitPath) -> VisitOut:
    return await service_of(request.app).get(principal_of(request), path.visit_id)


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "Each side's call quality",
    path=VisitPath,
    response=VisitQualityOut,
    errors=(404,),
    description="For the monitor's grid: while the visit waits or is live, each side's "
    "latest uplink grade (`excellent`/`good`/`poor`/`lost`, the worst across the side's "
    "participants; null before a sample, or when the room runs on another instance); once "
    "it ended (`final`), each side's median grade on the record.",
)
async def visit_quality(request: web.Request, *, path: VisitPath) -> VisitQualityOut:
    return await service_of(request.app).quality(principal_of(request), path.visit_id)


@policy(Action.VISITS_APPROVE, auth=(SESSION,))
@contract(
    "Approve a visit",
    path=VisitPath,
    body=Empty,
    response=VisitOut,
    errors=(404, 409),
    description="State `approved`, and each relative's `join_code` (6 digits) and "
    "`join_url`, answered this once. An emergency visit stays `requested` after the first "
    "approval (`approvals_needed` 1) until another staff member approves it.",
)
async def approve(request: web.Request, *, path: VisitPath, body: Empty) -> VisitOut:
    return await service_of(request.app).approve(principal_of(request), path.visit_id)


@policy(Action.VISITS_APPROVE, auth=(SESSION,))
@contract(
    "Refuse a visit",
    path=VisitPath,
    body=RefuseIn,
    response=VisitOut,
    errors=(404, 409, 422),
    description="State `ended`, outcome `refused`, with the reason the family is told.",
)
async def refuse(request: web.Request, *, path: VisitPath, body: RefuseIn) -> VisitOut:
    return await service_of(request.app).refuse(
        principal_of(request), path.visit_id, body.reason.strip()
    )


@policy(Action.VISITS_BOOK, auth=(SESSION,))
@contract(
    "Cancel a visit",
    path=VisitPath,
    body=CancelIn,
    response=VisitOut,
    errors=(404, 409, 422),
    description="Before it is live: state `ended`, outcome `cancelled`; the slot is free "
    "at once and the visit does not count in the month's quota.",
)
async def cancel(request: web.Request, *, path: VisitPath, body: CancelIn) -> VisitOut:
    return await service_of(request.app).cancel(
        principal_of(request), path.visit_id, body.reason.strip()
    )


@public
@contract(
    "Join a visit with a code (the relative)",
    body=JoinIn,
    response=JoinOut,
    errors=(401, 403, 409, 422, 429),
    description="Exchanges the relative's 6-digit `code` (or the link's `token`) for a guest "
    "session of that one visit (`guest_token`, a bearer token). 403 `code_not_valid_now` "
    "outside the code's window (from `visit_join_early_minutes` before the slot to its "
    "end); 409 `code_used` for a second use; 401 for an unknown code. Unknown codes are "
    "counted per client address like failed logins (`login_max_failures` within "
    "`login_window_s`): past them 429 `too_many_attempts` with `Retry-After`, so the "
    "million codes cannot be walked.",
)
async def join(request: web.Request, *, body: JoinIn) -> JoinOut:
    if (body.code is None) == (body.token is None):
        raise validation_error({"code": "give either code or token"})
    throttle = request.app[keys.THROTTLE]
    who = ("visit-join", "", remote_of(request))  # per address: a code names nobody
    wait = await throttle.retry_after(*who)
    if wait > 0:
        raise _too_many(wait)
    try:
        joined = await service_of(request.app).join(code=body.code, token=body.token)
    except InvalidCredentials:
        locked = await throttle.failure(*who)
        if locked:
            raise _too_many(locked) from None
        raise
    await throttle.success(*who)
    return joined


IdNumber = Annotated[str, msgspec.Meta(pattern="^ *[0-9]{17}[0-9Xx] *$")]
"""A resident ID number (18 characters, the last may be X)."""
Phone = Annotated[str, msgspec.Meta(pattern="^[+0-9][0-9 -]{5,19}$")]


class BookingQuery(msgspec.Struct):
    id_number: IdNumber
    phone: Phone


class RequestIn(msgspec.Struct, forbid_unknown_fields=True):
    id_number: IdNumber
    phone: Phone
    inmate_id: InmateId
    starts_at: AwareTime
    relative_ids: Annotated[list[Id], msgspec.Meta(max_length=10)] = []
    """Other relatives of the inmate who come along (the booker always does)."""


class RequestCancelIn(msgspec.Struct, forbid_unknown_fields=True):
    id_number: IdNumber
    phone: Phone
    reason: Note = ""


def requests_of(app: web.Application) -> VisitRequests:
    return VisitRequests(service_of(app))


async def _identified(request: web.Request, call: Any) -> Any:
    """Run ``call`` for an identity; an unknown ID number and phone counts per address
    (scope ``visit-book``, the ``login_*`` settings) and past the limit is 429."""
    throttle = request.app[keys.THROTTLE]
    who = ("visit-book", "", remote_of(request))
    wait = await throttle.retry_after(*who)
    if wait > 0:
        raise TooManyAttempts(
            "too many wrong ID numbers or phones; try again later", retry_after=wait
        )
    try:
        out = await call()
    except InvalidCredentials:
        locked = await throttle.failure(*who)
        if locked:
            raise TooManyAttempts(
                "too many wrong ID numbers or phones; try again later", retry_after=locked
            ) from None
        raise
    await throttle.success(*who)
    return out


@public
@contract(
    "What a relative may book (public)",
    query=BookingQuery,
    response=BookingOut,
    errors=(401, 422, 429),
    description="The relative identifies with the ID number and the phone on their record "
    "(no account). Answers each inmate they are registered for with their status, the "
    "other relatives who may come along and the free slots, and their own requests. An "
    "unknown pair is 401 and counted per address like failed logins (429 past the limit).",
)
async def booking(request: web.Request, *, query: BookingQuery) -> BookingOut:
    result: BookingOut = await _identified(
        request, lambda: requests_of(request.app).booking(query.id_number, query.phone)
    )
    return result


@public
@contract(
    "Request a visit (the relative, public)",
    body=RequestIn,
    response=RequestOut,
    status=201,
    errors=(401, 404, 409, 422, 429),
    description="State `requested`, for visit staff to approve. Refused with 409 "
    "`booking_refused` and the same rules and messages as the staff's booking. 401 for an "
    "unknown ID number and phone (throttled), 404 for an inmate they are not registered for.",
)
async def request_visit(request: web.Request, *, body: RequestIn) -> RequestOut:
    in_calendar(body)
    result: RequestOut = await _identified(
        request,
        lambda: requests_of(request.app).request(
            body.id_number,
            body.phone,
            inmate_id=body.inmate_id,
            starts_at=body.starts_at,
            relative_ids=body.relative_ids,
        ),
    )
    return result


@public
@contract(
    "Cancel one's own visit (the relative, public)",
    path=VisitPath,
    body=RequestCancelIn,
    response=RequestOut,
    errors=(401, 404, 409, 422, 429),
    description="Before it is live, with the same identity: outcome `cancelled`, the slot "
    "is free at once.",
)
async def cancel_request(
    request: web.Request, *, path: VisitPath, body: RequestCancelIn
) -> RequestOut:
    result: RequestOut = await _identified(
        request,
        lambda: requests_of(request.app).cancel(
            body.id_number, body.phone, path.visit_id, body.reason.strip()
        ),
    )
    return result


def _too_many(wait: float) -> RateLimited:
    return TooManyAttempts("too many wrong visit codes; try again later", retry_after=wait)


class CsvQuery(msgspec.Struct):
    prison_id: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)] | None = None
    date: date | None = None
    state: VisitState | None = None


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "Visits (CSV)",
    query=CsvQuery,
    media_type="text/csv",
    errors=(404, 422),
    description="The list's filters; at most 10,000 rows, latest slot first.",
)
async def visits_csv_handler(request: web.Request, *, query: CsvQuery) -> web.Response:
    if query.date is not None and not 1 < query.date.year < 9999:
        raise validation_error({"date": "a day between years 2 and 9998"})
    page = await service_of(request.app).find(
        principal_of(request),
        prison_id=query.prison_id,
        day=query.date,
        state=query.state,
        limit=10_000,
    )
    return web.Response(
        text=visits_csv(page.items),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="visits.csv"'},
    )


class FiguresQuery(msgspec.Struct):
    month: Annotated[str, msgspec.Meta(pattern="^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$")]


@policy(Action.VISITS_READ, auth=(SESSION,))
@contract(
    "The month's figures per prison and visit point",
    query=FiguresQuery,
    response=MonthFigures,
    errors=(422,),
    description="Booked, held (completed + terminated), completed, terminated, no-show, "
    "cancelled and refused visits of `month` (YYYY-MM, local), in the caller's prisons; "
    "`median_quality` (both sides), `median_quality_relatives` and `median_quality_inmate`: "
    "the median of the visits' side grades on their records (null: no graded visit).",
)
async def figures(request: web.Request, *, query: FiguresQuery) -> MonthFigures:
    return await service_of(request.app).figures(principal_of(request), query.month)


def live_of(app: web.Application) -> VisitLive:
    try:
        return app[keys.VISITS_LIVE]
    except KeyError:
        raise Unavailable("visits are not running") from None


class WarnIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, NOT_BLANK, msgspec.Meta(max_length=200)]


class MuteIn(msgspec.Struct, forbid_unknown_fields=True):
    side: Literal["inmate", "relatives"]
    muted: bool = True


class TerminateIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: TerminateReason
    note: Note = ""
    ban_months: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    """1–3: the relatives may not visit for that many months (0: no ban)."""


@policy(Action.VISITS_RUN, auth=(SESSION,))
@contract(
    "Admit the waiting parties",
    path=VisitPath,
    body=Empty,
    response=VisitOut,
    errors=(404, 409),
    description="State `live` after staff compared the relatives' faces with the photos on "
    "file. 409 `monitor_required` while no staff monitor watches (unless privileged or "
    "`visit_require_monitor` is off). The limit (`visit_minutes`) counts from now; "
    "`visit.warning` events come at 5 and 1 minute left and the visit ends itself.",
)
async def admit(request: web.Request, *, path: VisitPath, body: Empty) -> VisitOut:
    return await live_of(request.app).admit(principal_of(request), path.visit_id)


@policy(Action.VISITS_RUN, auth=(SESSION,))
@contract(
    "Send a warning text to both sides",
    path=VisitPath,
    body=WarnIn,
    response=VisitOut,
    errors=(404, 409, 422),
    description="Both pages show it at once (`visit.text` event); kept on the record.",
)
async def warn(request: web.Request, *, path: VisitPath, body: WarnIn) -> VisitOut:
    return await live_of(request.app).warn(principal_of(request), path.visit_id, body.text.strip())


@policy(Action.VISITS_RUN, auth=(SESSION,))
@contract(
    "Mute or unmute one side",
    path=VisitPath,
    body=MuteIn,
    response=VisitOut,
    errors=(404, 409, 422),
    description="The server stops passing that side's sound to everyone else in the call "
    "(video goes on; the recording keeps the sound); `visit.mute` event to both pages; kept "
    "on the record.",
)
async def mute(request: web.Request, *, path: VisitPath, body: MuteIn) -> VisitOut:
    return await live_of(request.app).mute(
        principal_of(request), path.visit_id, body.side, body.muted
    )


@policy(Action.VISITS_RUN, auth=(SESSION,))
@contract(
    "Terminate a visit",
    path=VisitPath,
    body=TerminateIn,
    response=VisitOut,
    errors=(404, 409, 422),
    description="Outcome `terminated` at once with a reason from the rule list; "
    "`ban_months` 1–3 suspends the relatives' visiting until then.",
)
async def terminate(request: web.Request, *, path: VisitPath, body: TerminateIn) -> VisitOut:
    return await live_of(request.app).terminate(
        principal_of(request), path.visit_id, body.reason, body.note.strip(), body.ban_months
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/visits", book)
    r.add_get("/api/v1/visits", list_visits)
    r.add_get("/api/v1/visits.csv", visits_csv_handler)
    r.add_get("/api/v1/visits/figures", figures)
    r.add_post("/api/v1/visits/join", join)
    r.add_get("/api/v1/visits/booking", booking)
    r.add_post("/api/v1/visits/requests", request_visit)
    r.add_post("/api/v1/visits/requests/{visit_id}/cancel", cancel_request)
    r.add_get("/api/v1/visits/{visit_id}", get_visit)
    r.add_get("/api/v1/visits/{visit_id}/quality", visit_quality)
    r.add_post("/api/v1/visits/{visit_id}/approve", approve)
    r.add_post("/api/v1/visits/{visit_id}/refuse", refuse)
    r.add_post("/api/v1/visits/{visit_id}/cancel", cancel)
    r.add_post("/api/v1/visits/{visit_id}/admit", admit)
    r.add_post("/api/v1/visits/{visit_id}/warn", warn)
    r.add_post("/api/v1/visits/{visit_id}/mute", mute)
    r.add_post("/api/v1/visits/{visit_id}/terminate", terminate)
