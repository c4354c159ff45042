"""Ingestion endpoints for integrations (API key): check-ins, device events, location fixes.

A body is one item (answered with that item's result, or its error envelope) or
``{"items": [...]}`` (answered ``200`` with one result per item, in order). Each item is
decoded on its own (:class:`web.contract.Batch`), so a bad item never costs its neighbours.
Oversize bodies and batches answer 413 before anything reaches the database; a key past its
rate answers 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from alerts.face_checks import CheckinPhoto
from alerts.ingest import Result
from alerts.items import CheckinIn, DeviceEventIn, LocationFixIn
from center.authz import Action
from center.errors import CenterError, RateLimited, error_body
from web import keys
from web.contract import Batch, BatchBody, Handler, contract, respond
from web.policy import API_KEY, policy, principal_of

_ERRORS = (404, 413, 429)


class ItemError(msgspec.Struct):
    code: str
    message: str
    details: dict[str, Any] | None = None


class FaceResult(msgspec.Struct, omit_defaults=True):
    """``pending`` while the photo waits for the face workers; then ``match``,
    ``mismatch``, ``no_face``, ``several_faces``, ``poor_quality`` or ``no_baseline``."""

    outcome: str
    distance: float | None = None


class ItemResult(msgspec.Struct, omit_defaults=True):
    """One item's answer: ``accepted``, ``duplicate`` (nothing changed) or ``rejected``."""

    index: int
    status: str
    event_id: str | None = None
    window_start: str | None = None
    late: bool | None = None
    error: ItemError | None = None
    face: FaceResult | None = None


class BatchResult(msgspec.Struct):
    results: list[ItemResult]


async def _ingest(request: web.Request, kind: str, body: BatchBody) -> web.Response:
    app = request.app
    principal = principal_of(request)
    engine = app[keys.ALERTS]
    wait = engine.rate.take(principal.id, len(body.entries))
    if wait > 0:
        rate = app[keys.SETTINGS].ingest_rate_per_s
        raise RateLimited(
            f"this API key is over its rate of {rate:g} items per second", retry_after=wait
        )
    photos = _photos(principal, body) if kind == "checkins" else []
    verifier = app.get(keys.FACE_VERIFIER) if photos else None
    if verifier is not None:
        verifier.admit(len(photos))  # 429 before anything is recorded
    try:
        results: list[Result] = await getattr(engine.ingestor, kind)(principal, body.entries)
    except BaseException:
        if verifier is not None:
            verifier.pool.release(len(photos))
        raise
    if verifier is not None:
        accepted = {str(r["event_id"]) for r in results if r.get("status") == "accepted"}
        faces = await verifier.record_checkins(photos, accepted)
        for r in results:
            if r.get("status") == "accepted" and r.get("event_id") in faces:
                r["face"] = faces[str(r["event_id"])]
    if body.single:
        result = results[0]
        err = result.get("error")
        if isinstance(err, CenterError):
            raise err
        result.pop("index", None)
        return respond(result, status=201 if result["status"] == "accepted" else 200)
    for result in results:
        err = result.get("error")
        if isinstance(err, CenterError):
            result["error"] = error_body(err.code, err.message, err.details)
    return respond({"results": results})


def _photos(principal: Any, body: BatchBody) -> list[CheckinPhoto]:
    """The batch's check-in photos, one per event id (a repeat in the batch is a duplicate)."""
    seen: dict[str, CheckinPhoto] = {}
    for item in body.entries:
        if isinstance(item, CheckinIn) and item.photo_jpeg_b64 and item.event_id not in seen:
            seen[item.event_id] = CheckinPhoto(
                item.event_id, principal.id[:32], item.subject_id, item.photo() or b""
            )
    return list(seen.values())


def _endpoint(
    kind: str, action: Action, item: type[msgspec.Struct], summary: str, description: str
) -> Handler:
    """One ingestion operation: the same batch contract for every item type."""

    @policy(action, auth=(API_KEY,))
    @contract(
        summary,
        body=Batch(item),
        response=(ItemResult, BatchResult),
        status=201,
        errors=_ERRORS,
        description=description
        + ' One item (201 accepted, 200 duplicate) or a batch `{"items": [...]}` (200, one '
        "result per item, in order). Idempotent on `event_id`; unknown fields are ignored.",
        responses={200: "A batch's results, or a duplicate single item (nothing changed)."},
    )
    async def handler(request: web.Request, *, body: BatchBody) -> web.Response:
        return await _ingest(request, kind, body)

    handler.__name__ = handler.__qualname__ = f"post_{kind}"
    return handler


post_checkins = _endpoint(
    "checkins",
    Action.CHECKINS_INGEST,
    CheckinIn,
    "Ingest check-ins",
    "App, terminal or officer check-ins.",
)
post_device_events = _endpoint(
    "device_events",
    Action.DEVICE_EVENTS_INGEST,
    DeviceEventIn,
    "Ingest device events",
    "Tamper, low battery, SOS, offline and back online, from phones and bracelets.",
)
post_locations = _endpoint(
    "locations",
    Action.LOCATIONS_INGEST,
    LocationFixIn,
    "Ingest location fixes",
    "Phone and bracelet fixes.",
)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/checkins", post_checkins)
    r.add_post("/api/v1/device-events", post_device_events)
    r.add_post("/api/v1/locations", post_locations)
