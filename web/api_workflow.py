"""HTTP API of the duty workflow: alarm actions, evidence, shifts.

Handlers parse and authorize at the edge and delegate to :mod:`alerts.workflow`,
:mod:`alerts.evidence` and :mod:`center.shifts`; errors are raised, never formatted here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import BodyPartReader, web

from alerts.workflow import ActionRequest
from center.authz import authorize
from center.errors import BadRequest, CenterError, NotFound, ValidationFailed, error_body
from center.shifts import shift_json, signon_json
from web import keys
from web.components import EVIDENCE, SHIFTS, WORKFLOW
from web.jsonio import json_response, read_object
from web.paging import id_param
from web.policy import SESSION, policy, principal_of

MAX_BULK = 500


def _alarm_id(request: web.Request) -> int:
    return id_param(request, "alarm_id", "alarm in your jurisdiction")


@policy("alarms.act", auth=(SESSION,))
async def alarm_action(request: web.Request) -> web.Response:
    """``POST /api/v1/alarms/{id}/actions`` ``{"action", "version", "note"?, "disposition"?}``
    → 200 with the updated alarm; 409 ``conflict`` for a stale version, 409
    ``invalid_transition`` for the wrong state, 403 for the wrong role, 404 outside the
    caller's jurisdiction."""
    body = await read_object(request)
    req = ActionRequest.parse(body)
    data = await request.app[WORKFLOW].act(principal_of(request), _alarm_id(request), req)
    return json_response(data)


@policy("alarms.act", auth=(SESSION,))
async def bulk_action(request: web.Request) -> web.Response:
    """``POST /api/v1/alarms/actions`` ``{"action", "items": [{"id", "version"}], "note"?}``:
    each alarm in its own transaction, so one refusal loses nothing else; 200 with a result
    per item (``ok`` + alarm, or ``error``)."""
    body = await read_object(request)
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise ValidationFailed("send 'items': a non-empty list of {id, version}")
    if len(items) > MAX_BULK:
        raise ValidationFailed(f"at most {MAX_BULK} alarms per request")
    workflow = request.app[WORKFLOW]
    principal = principal_of(request)
    results: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            results.append(
                {
                    "id": None,
                    "ok": False,
                    "error": error_body("validation_failed", "each item needs an integer id"),
                }
            )
            continue
        try:
            req = ActionRequest.parse({**body, "version": item.get("version")})
            alarm = await workflow.act(principal, item["id"], req)
        except CenterError as err:
            results.append(
                {
                    "id": item["id"],
                    "ok": False,
                    "status": err.status,
                    "error": error_body(err.code, err.message, err.details),
                }
            )
        else:
            results.append({"id": item["id"], "ok": True, "alarm": alarm})
    return json_response({"results": results, "ok": sum(1 for r in results if r["ok"])})


@policy("alarms.read", auth=(SESSION,))
async def alarm_workflow(request: web.Request) -> web.Response:
    """``GET /api/v1/alarms/{id}/workflow``: the alarm with its timeline, the caller's allowed
    actions and its evidence (the detail panel's one request)."""
    alarm_id = _alarm_id(request)
    principal = principal_of(request)
    data = await request.app[WORKFLOW].get(principal, alarm_id)
    data["evidence"] = await request.app[EVIDENCE].list(alarm_id)
    return json_response(data)


QUEUE_FIELDS = (
    "id",
    "kind",
    "severity",
    "state",
    "subject_id",
    "street_id",
    "district_id",
    "version",
    "count",
    "created_at",
    "owner_level",
    "ack_due_at",
    "report_due_at",
    "loop_due_at",
    "loop_breached",
    "escalations",
)
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
MAX_QUEUE_PAGE = 2000


@policy("alarms.read", auth=(SESSION,))
async def queue(request: web.Request) -> web.Response:
    """``GET /api/v1/alarms/queue?state=&kind=&district=&street=&level=&offset=&limit=``:
    the console's queue — open alarms of the caller's scope, most severe first, then oldest,
    with the SLA fields and nothing the list does not show (so 6,000 alarms stay small)."""
    from sqlalchemy import case, func, select

    from alerts.transitions import OPEN_STATES, Level, State
    from alerts.workflow_schema import alarm_flow
    from center.models import Subject
    from web.paging import enum_param, int_param

    principal = principal_of(request)
    queued = [str(x) for x in OPEN_STATES] + [str(State.RESOLVED)]  # resolved: awaits close
    states = enum_param(request, "state", queued) or queued
    levels = enum_param(request, "level", [str(x) for x in Level])
    kinds = [k for k in request.query.get("kind", "").split(",") if k]
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    limit = int_param(request, "limit", 500, 1, MAX_QUEUE_PAGE)
    c = alarm_flow.c
    tree = request.app[keys.TREE]
    conds: list[Any] = []
    for name, column in (("district", c.district_id), ("street", c.street_id)):
        value = request.query.get(name)
        if not value:
            continue
        if value not in tree or not authorize(principal, "alarms.read", tree.path(value)):
            raise NotFound(f"no such {name} in your jurisdiction")
        conds.append(column == value)
    own = principal.jurisdiction
    if len(own) >= 3:
        conds.append(c.street_id == own[2])
    elif len(own) == 2:
        conds.append(c.district_id == own[1])
    conds += [c.state.in_(states), c.suppressed.is_(False)]
    if levels:
        conds.append(c.owner_level.in_(levels))
    if kinds:
        conds.append(c.kind.in_(kinds))
    rank = case(SEVERITY_RANK, value=c.severity, else_=9)
    subjects = Subject.__table__
    async with request.app[keys.SESSIONMAKER]() as session:
        total = await session.scalar(select(func.count()).select_from(alarm_flow).where(*conds))
        rows = (
            (
                await session.execute(
                    select(
                        *(getattr(c, f) for f in QUEUE_FIELDS),
                        subjects.c.name.label("subject_name"),
                    )
                    .select_from(alarm_flow.outerjoin(subjects, subjects.c.id == c.subject_id))
                    .where(*conds)
                    .order_by(rank, c.created_at, c.id)
                    .offset(offset)
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
    items = []
    for r in rows:
        item = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
        item["loop_breached"] = bool(item["loop_breached"])
        items.append(item)
    return json_response({"items": items, "total": total or 0, "offset": offset, "limit": limit})


# -- evidence -----------------------------------------------------------------------------


@policy("alarms.act", auth=(SESSION,))
async def upload_evidence(request: web.Request) -> web.Response:
    """``POST /api/v1/alarms/{id}/evidence`` (multipart: ``file``, optional ``note``): JPEG,
    PNG or PDF by content (magic bytes), at most ``evidence_max_bytes``; 201 with the record
    (SHA-256 included). The file goes on the alarm's timeline."""
    alarm_id = _alarm_id(request)
    principal = principal_of(request)
    workflow = request.app[WORKFLOW]
    async with request.app[keys.SESSIONMAKER]() as session:
        row = await workflow.row(session, alarm_id)
    if row is None or not workflow.visible(principal, row, "alarms.act"):
        raise NotFound("no such alarm in your jurisdiction")
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
            note = (await part.text())[:4000]
        elif part.name == "file" and record is None:
            record = await store.save(
                principal, alarm_id, part, filename=part.filename or "upload", note=note
            )
    if record is None:
        raise BadRequest("no 'file' field in the upload")
    return json_response(record, status=201)


@policy("alarms.read", auth=(SESSION,))
async def list_evidence(request: web.Request) -> web.Response:
    alarm_id = _alarm_id(request)
    principal = principal_of(request)
    workflow = request.app[WORKFLOW]
    async with request.app[keys.SESSIONMAKER]() as session:
        row = await workflow.row(session, alarm_id)
    if row is None or not workflow.visible(principal, row, "alarms.read"):
        raise NotFound("no such alarm in your jurisdiction")
    return json_response({"items": await request.app[EVIDENCE].list(alarm_id)})


@policy("alarms.read", auth=(SESSION,))
async def download_evidence(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/evidence/{id}``: the file, if its alarm is in the caller's jurisdiction;
    the stored SHA-256 is re-checked before sending."""
    evidence_id = id_param(request, "evidence_id", "evidence")
    principal = principal_of(request)
    store = request.app[EVIDENCE]
    item, path = await store.open(evidence_id)
    workflow = request.app[WORKFLOW]
    async with request.app[keys.SESSIONMAKER]() as session:
        row = await workflow.row(session, item.alarm_id)
    if row is None or not workflow.visible(principal, row, "alarms.read"):
        raise NotFound("no such evidence")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": item.content_type,
            "Content-Disposition": f'inline; filename="evidence-{item.id}"',
            "X-Content-SHA256": item.sha256,
            "Cache-Control": "private, no-store",
        },
    )


# -- shifts -------------------------------------------------------------------------------


def _when(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationFailed(
            f"'{name}' must be an ISO-8601 time with a zone", details={name: value}
        )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValidationFailed(
            f"'{name}' must be an ISO-8601 time with a zone", details={name: value}
        )
    return parsed


@policy("duty.read", auth=(SESSION,))
async def staffing(request: web.Request) -> web.Response:
    """``GET /api/v1/duty/staffing``: on duty now at the city center vs the minimum."""
    shifts = request.app[SHIFTS]
    st = await shifts.staffing()
    return json_response(st.as_json())


@policy("duty.sign", auth=(SESSION,))
async def sign_on(request: web.Request) -> web.Response:
    """``POST /api/v1/duty/sign-on`` ``{"shift_id"?}``: 200 with the sign-on and the latest
    handover notes; 409 when already signed on."""
    body = await read_object(request) if request.can_read_body else {}
    shift_id = body.get("shift_id")
    if shift_id is not None and (not isinstance(shift_id, int) or isinstance(shift_id, bool)):
        raise ValidationFailed("'shift_id' must be an integer")
    row, handovers = await request.app[SHIFTS].sign_on(principal_of(request), shift_id=shift_id)
    return json_response(
        {"signon": signon_json(row), "handovers": [signon_json(h) for h in handovers]}
    )


@policy("duty.sign", auth=(SESSION,))
async def sign_off(request: web.Request) -> web.Response:
    """``POST /api/v1/duty/sign-off`` ``{"handover_note"}`` (required)."""
    body = await read_object(request)
    row = await request.app[SHIFTS].sign_off(
        principal_of(request), handover_note=body.get("handover_note")
    )
    return json_response({"signon": signon_json(row)})


@policy("duty.read", auth=(SESSION,))
async def on_duty(request: web.Request) -> web.Response:
    """``GET /api/v1/duty/on-duty``: who is signed on in the caller's jurisdiction, and the
    latest handover notes."""
    principal = principal_of(request)
    jid = principal.jurisdiction[-1] if principal.jurisdiction else ""
    shifts = request.app[SHIFTS]
    return json_response(
        {
            "items": [signon_json(s) for s in await shifts.on_duty(jid)],
            "handovers": [signon_json(s) for s in await shifts.handovers(jid, limit=10)],
            "staffing": (await shifts.staffing()).as_json(),
        }
    )


@policy("duty.read", auth=(SESSION,))
async def list_shifts(request: web.Request) -> web.Response:
    """``GET /api/v1/duty/shifts?from=&to=&jurisdiction=`` (default: the next 7 days)."""
    principal = principal_of(request)
    tree = request.app[keys.TREE]
    jid = request.query.get("jurisdiction") or (
        principal.jurisdiction[-1] if principal.jurisdiction else ""
    )
    if jid not in tree or not authorize(principal, "duty.read", tree.path(jid)):
        raise NotFound("no such jurisdiction in your scope")
    now = request.app[keys.CLOCK].now()
    start = (
        _when(request.query["from"], "from") if "from" in request.query else now - timedelta(days=1)
    )
    end = _when(request.query["to"], "to") if "to" in request.query else now + timedelta(days=7)
    rows = await request.app[SHIFTS].shifts(jid, start, end)
    return json_response({"items": [shift_json(s) for s in rows]})


@policy("duty.manage", auth=(SESSION,))
async def create_shift(request: web.Request) -> web.Response:
    """``POST /api/v1/duty/shifts`` ``{"starts_at", "ends_at", "officers": [...], "note"?,
    "jurisdiction"?}`` → 201."""
    principal = principal_of(request)
    body = await read_object(request)
    tree = request.app[keys.TREE]
    jid = body.get("jurisdiction") or (principal.jurisdiction[-1] if principal.jurisdiction else "")
    if (
        not isinstance(jid, str)
        or jid not in tree
        or not authorize(principal, "duty.manage", tree.path(jid))
    ):
        raise NotFound("no such jurisdiction in your scope")
    officers = body.get("officers", [])
    if not isinstance(officers, list) or not all(isinstance(o, str) for o in officers):
        raise ValidationFailed("'officers' must be a list of usernames")
    note = body.get("note", "")
    shift = await request.app[SHIFTS].create_shift(
        principal,
        jurisdiction_id=jid,
        starts_at=_when(body.get("starts_at"), "starts_at"),
        ends_at=_when(body.get("ends_at"), "ends_at"),
        officers=officers,
        note=note if isinstance(note, str) else "",
    )
    return json_response(shift_json(shift), status=201)


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


async def add_workflow_fields(request: web.Request, *items: dict[str, Any]) -> None:
    """Hook for the engine's alarm read API: merge the workflow's fields (owner level, SLA
    deadlines, disposition, breach flag) into alarm JSON items, and give a detail body its
    ``timeline`` (the same events the engine lists as ``events``)."""
    from sqlalchemy import select

    from alerts.workflow_schema import WORKFLOW_COLUMNS, alarm_flow, workflow_fields

    ids = [i["id"] for i in items if isinstance(i.get("id"), int)]
    if not ids:
        return
    c = alarm_flow.c
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = (
            (
                await session.execute(
                    select(c.id, *(c[name] for name in WORKFLOW_COLUMNS)).where(c.id.in_(ids))
                )
            )
            .mappings()
            .all()
        )
    by_id = {r["id"]: workflow_fields(r) for r in rows}
    for item in items:
        item.update(by_id.get(item.get("id"), {}))
        if "events" in item:
            item.setdefault("timeline", item["events"])
