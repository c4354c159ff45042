"""HTTP API of the duty workflow: alarm actions, the console queue, evidence, shifts.

Thin handlers: each declares its contract (``@contract``: path, query and body models,
response model) and calls one service — :mod:`alerts.workflow` / :mod:`alerts.actions` for
actions, :mod:`alerts.alarm_queries` for the queue and the detail panel,
:mod:`alerts.evidence` for files, :mod:`center.shifts` for the roster. Errors are raised,
never formatted here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import msgspec
from aiohttp import BodyPartReader, web

from alerts import alarm_queries
from alerts.actions import (
    MAX_ID,
    MAX_NOTE,
    ActionRequest,
    BulkOut,
    BulkRequest,
    act_many,
)
from alerts.alarm_queries import AlarmWorkflowView, QueuePage, QueueQuery
from alerts.serialize import AlarmOut
from center.authz import Action
from center.errors import BadRequest, NotFound
from center.scope import visible_or_404
from center.shifts import (
    ShiftIn,
    ShiftsQuery,
    SignOffIn,
    SignOnIn,
    shift_json,
    signon_json,
)
from web import keys
from web.components import EVIDENCE, SHIFTS, WORKFLOW
from web.contract import Multipart, contract, decode, text_part
from web.policy import SESSION, policy, principal_of

FreeJson = dict[str, Any]


class AlarmPath(msgspec.Struct):
    alarm_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class EvidencePath(msgspec.Struct):
    evidence_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class EvidenceList(msgspec.Struct):
    items: list[dict[str, Any]]


@policy(Action.ALARMS_ACT, auth=(SESSION,))
@contract(
    "Act on one alarm",
    path=AlarmPath,
    body=ActionRequest,
    response=AlarmOut,
    errors=(404, 409),
    description="409 conflict for a stale version, 409 invalid_transition for the wrong "
    "state, 403 for the wrong role or owner, 404 outside the caller's jurisdiction.",
)
async def alarm_action(request: web.Request, *, path: AlarmPath, body: ActionRequest) -> AlarmOut:
    return await request.app[WORKFLOW].act(principal_of(request), path.alarm_id, body)


@policy(Action.ALARMS_ACT, auth=(SESSION,))
@contract(
    "Act on many alarms",
    body=BulkRequest,
    response=BulkOut,
    description="Each alarm in its own transaction, in order: one refusal (or one bad item) "
    "loses nothing else; 200 with a result per item (ok + alarm, or status + error).",
)
async def bulk_action(request: web.Request, *, body: BulkRequest) -> BulkOut:
    return await act_many(request.app[WORKFLOW], principal_of(request), body)


@policy(Action.ALARMS_READ, auth=(SESSION,))
@contract(
    "The detail panel: alarm, actions, timeline, evidence",
    path=AlarmPath,
    response=AlarmWorkflowView,
    errors=(404,),
)
async def alarm_workflow(request: web.Request, *, path: AlarmPath) -> AlarmWorkflowView:
    return await alarm_queries.workflow_view(
        request.app[WORKFLOW], request.app[EVIDENCE], principal_of(request), path.alarm_id
    )


@policy(Action.ALARMS_READ, auth=(SESSION,))
@contract(
    "The console queue",
    query=QueueQuery,
    response=QueuePage,
    errors=(404,),
    description="Alarms of the caller's scope that want work — open ones and resolved ones "
    "awaiting close — most severe first, then oldest. `open`/`awaiting_close` split the "
    "total as the dashboard and the daily report count (resolved is not open).",
)
async def queue(request: web.Request, *, query: QueueQuery) -> QueuePage:
    async with request.app[keys.SESSIONMAKER]() as session:
        return await alarm_queries.queue(
            session, request.app[keys.TREE], principal_of(request), query
        )


# -- evidence -----------------------------------------------------------------------------


@policy(Action.ALARMS_ACT, auth=(SESSION,))
@contract(
    "Upload evidence",
    path=AlarmPath,
    body=Multipart(
        {"file": "JPEG, PNG or PDF (by content)", "note": f"at most {MAX_NOTE} characters"},
        required=("file",),
    ),
    response=FreeJson,
    status=201,
    errors=(400, 404, 413),
)
async def upload_evidence(request: web.Request, *, path: AlarmPath) -> FreeJson:
    """Multipart ``file`` (+ optional ``note``), at most ``evidence_max_bytes``; the record
    carries the SHA-256 and the file goes on the alarm's timeline."""
    principal = principal_of(request)
    alarm_id = path.alarm_id
    await request.app[WORKFLOW].visible_row(principal, alarm_id, Action.ALARMS_ACT)
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("upload the file as multipart/form-data with a 'file' field")
    reader = await request.multipart()
    note = ""
    record = None
    store = request.app[EVIDENCE]
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart bodies are not accepted")
        if part.name == "note":
            note = text_part(await part.read(), "note")[:MAX_NOTE]
        elif part.name == "file" and record is None:
            record = await store.save(
                principal, alarm_id, part, filename=part.filename or "upload", note=note
            )
    if record is None:
        raise BadRequest("no 'file' field in the upload")
    return record


@policy(Action.ALARMS_READ, auth=(SESSION,))
@contract("An alarm's evidence", path=AlarmPath, response=EvidenceList, errors=(404,))
async def list_evidence(request: web.Request, *, path: AlarmPath) -> EvidenceList:
    await request.app[WORKFLOW].visible_row(principal_of(request), path.alarm_id)
    return EvidenceList(items=await request.app[EVIDENCE].list(path.alarm_id))


@policy(Action.ALARMS_READ, auth=(SESSION,))
@contract(
    "Download one evidence file",
    path=EvidencePath,
    media_type="application/octet-stream",
    errors=(404,),
    description="The file, if its alarm is in the caller's jurisdiction; the stored SHA-256 "
    "is re-checked before sending (X-Content-SHA256).",
)
async def download_evidence(request: web.Request, *, path: EvidencePath) -> web.StreamResponse:
    item, file = await request.app[EVIDENCE].open(path.evidence_id)
    try:
        await request.app[WORKFLOW].visible_row(principal_of(request), item.alarm_id)
    except NotFound:
        raise NotFound("no such evidence") from None
    return web.FileResponse(
        file,
        headers={
            "Content-Type": item.content_type,
            "Content-Disposition": f'inline; filename="evidence-{item.id}"',
            "X-Content-SHA256": item.sha256,
            "Cache-Control": "private, no-store",
        },
    )


# -- shifts -------------------------------------------------------------------------------


def _own(request: web.Request) -> str:
    principal = principal_of(request)
    return principal.jurisdiction[-1] if principal.jurisdiction else ""


@policy(Action.DUTY_READ, auth=(SESSION,))
@contract("Staffing of the city center", response=FreeJson)
async def staffing(request: web.Request) -> FreeJson:
    """On duty now at the city center vs the minimum."""
    return (await request.app[SHIFTS].staffing()).as_json()


@policy(Action.DUTY_SIGN, auth=(SESSION,))
@contract(
    "Sign on",
    response=FreeJson,
    errors=(404, 409),
    description="Optional JSON body {shift_id}. 200 with the sign-on and the latest handover "
    "notes; 409 when already signed on.",
)
async def sign_on(request: web.Request) -> FreeJson:
    # The body is optional, which @contract's body= does not express: decode the same model.
    body = decode(await request.read(), SignOnIn) if request.can_read_body else SignOnIn()
    row, handovers = await request.app[SHIFTS].sign_on(
        principal_of(request), shift_id=body.shift_id
    )
    return {"signon": signon_json(row), "handovers": [signon_json(h) for h in handovers]}


@policy(Action.DUTY_SIGN, auth=(SESSION,))
@contract("Sign off with a handover note", body=SignOffIn, response=FreeJson, errors=(409,))
async def sign_off(request: web.Request, *, body: SignOffIn) -> FreeJson:
    row = await request.app[SHIFTS].sign_off(
        principal_of(request), handover_note=body.handover_note
    )
    return {"signon": signon_json(row)}


@policy(Action.DUTY_READ, auth=(SESSION,))
@contract("Who is on duty in the caller's jurisdiction", response=FreeJson)
async def on_duty(request: web.Request) -> FreeJson:
    """Who is signed on, the latest handover notes and the city center's staffing."""
    jid = _own(request)
    shifts = request.app[SHIFTS]
    return {
        "items": [signon_json(s) for s in await shifts.on_duty(jid)],
        "handovers": [signon_json(s) for s in await shifts.handovers(jid, limit=10)],
        "staffing": (await shifts.staffing()).as_json(),
    }


@policy(Action.DUTY_READ, auth=(SESSION,))
@contract("The roster", query=ShiftsQuery, response=FreeJson, errors=(404,))
async def list_shifts(request: web.Request, *, query: ShiftsQuery) -> FreeJson:
    """Shifts of a jurisdiction in scope (default: from a day ago to a week ahead)."""
    jid = query.jurisdiction or _own(request)
    visible_or_404(
        principal_of(request), request.app[keys.TREE], Action.DUTY_READ, jid, "jurisdiction"
    )
    now = request.app[keys.CLOCK].now()
    start = query.from_ or now - timedelta(days=1)
    end = query.to or now + timedelta(days=7)
    rows = await request.app[SHIFTS].shifts(jid, start, end)
    return {"items": [shift_json(s) for s in rows]}


@policy(Action.DUTY_MANAGE, auth=(SESSION,))
@contract("Roster a shift", body=ShiftIn, response=FreeJson, status=201, errors=(404,))
async def create_shift(request: web.Request, *, body: ShiftIn) -> FreeJson:
    principal = principal_of(request)
    jid = body.jurisdiction or _own(request)
    visible_or_404(principal, request.app[keys.TREE], Action.DUTY_MANAGE, jid, "jurisdiction")
    shift = await request.app[SHIFTS].create_shift(
        principal,
        jurisdiction_id=jid,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        officers=list(body.officers),
        note=body.note,
    )
    return shift_json(shift)


def add_routes(app: web.Application) -> None:
    """Called from :func:`web.routes.setup_routes`."""
    r = app.router
    r.add_get("/api/v1/alarms/queue", queue)
    r.add_post("/api/v1/alarms/actions", bulk_action)
    r.add_post("/api/v1/alarms/{alarm_id}/actions", alarm_action)
    r.add_get("/api/v1/alarms/{alarm_id}/workflow", alarm_workflow)
    r.add_post("/api/v1/alarms/{alarm_id}/evidence", upload_evidence)
    r.add_get("/api/v1/alarms/{alarm_id}/evidence", list_evidence)
    r.add_get("/api/v1/evidence/{evidence_id}", download_evidence)
    r.add_get("/api/v1/duty/staffing", staffing)
    r.add_get("/api/v1/duty/on-duty", on_duty)
    r.add_post("/api/v1/duty/sign-on", sign_on)
    r.add_post("/api/v1/duty/sign-off", sign_off)
    r.add_get("/api/v1/duty/shifts", list_shifts)
    r.add_post("/api/v1/duty/shifts", create_shift)
    from web import api_reports

    api_reports.add_routes(app)
