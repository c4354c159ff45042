"""Ingestion endpoints for integrations (API key): check-ins, device events, location fixes.

A body is one item (answered with that item's result, or its error envelope) or
``{"items": [...]}`` (answered ``200`` with one result per item, in order). Oversize bodies
and batches answer 413 before anything is read into the database; a key past its rate
answers 429 with ``Retry-After``. See ``web/openapi.py`` for the shapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from center.authz import Principal
from center.errors import BadRequest, CenterError, PayloadTooLarge, RateLimited, ValidationFailed
from web import keys
from web.components import ALERTS
from web.jsonio import json_response, read_json
from web.policy import API_KEY, policy, principal_of

Handler = Callable[[Principal, Sequence[Any]], Awaitable[list[dict[str, Any]]]]


async def _ingest(request: web.Request, kind: str) -> web.Response:
    app = request.app
    settings = app[keys.SETTINGS]
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise PayloadTooLarge(
            f"the body is {length} bytes; the limit is {settings.max_body_bytes}",
            details={"max_body_bytes": settings.max_body_bytes},
        )
    body = await read_json(request)
    batch = isinstance(body, dict) and "items" in body
    if batch:
        items = body["items"]
        if not isinstance(items, list):
            raise BadRequest("'items' must be a JSON array")
        if len(items) > settings.ingest_max_batch:
            raise PayloadTooLarge(
                f"a batch holds at most {settings.ingest_max_batch} items, not {len(items)}",
                details={"max_items": settings.ingest_max_batch},
            )
        if not items:
            raise ValidationFailed("'items' is empty")
    elif isinstance(body, dict):
        items = [body]
    else:
        raise BadRequest('the body must be one JSON object or {"items": [...]}')
    principal = principal_of(request)
    engine = app[ALERTS]
    wait = engine.rate.take(principal.id, len(items))
    if wait > 0:
        raise RateLimited(
            f"this API key is over its rate of {settings.ingest_rate_per_s:g} items per second",
            retry_after=wait,
        )
    handler: Handler = getattr(engine.ingestor, kind)
    results = await handler(principal, items)
    if batch:
        return json_response({"results": results})
    result = results[0]
    if result["status"] == "rejected":
        err = result["error"]
        raise CenterError(
            err["message"],
            code=err["code"],
            details=err.get("details"),
            status=404 if err["code"] == "not_found" else 422,
        )
    result.pop("index", None)
    return json_response(result, status=201 if result["status"] == "accepted" else 200)


@policy("checkins.ingest", auth=(API_KEY,))
async def post_checkins(request: web.Request) -> web.Response:
    """``POST /api/v1/checkins``: one check-in or a batch."""
    return await _ingest(request, "checkins")


@policy("device_events.ingest", auth=(API_KEY,))
async def post_device_events(request: web.Request) -> web.Response:
    """``POST /api/v1/device-events``: tamper, low battery, SOS, offline, online."""
    return await _ingest(request, "device_events")


@policy("locations.ingest", auth=(API_KEY,))
async def post_locations(request: web.Request) -> web.Response:
    """``POST /api/v1/locations``: phone and bracelet fixes."""
    return await _ingest(request, "locations")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/checkins", post_checkins)
    r.add_post("/api/v1/device-events", post_device_events)
    r.add_post("/api/v1/locations", post_locations)
