"""The OpenAPI 3.1 document of the ingestion, alarm and supervision endpoints.

Written by hand (the handlers validate in plain Python for speed), and kept true by tests:
``tests/web/test_openapi.py`` checks that every documented path is routed and every routed
path of these groups is documented, and runs schemathesis against a live server so any
response that does not match the document — or any 5xx — fails the build.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web

from alerts.models import (
    AlarmKind,
    AlarmState,
    CheckinSource,
    DeviceEventKind,
    DeviceType,
    Severity,
)
from web.jsonio import json_response
from web.policy import public

_NULL_STR = {"type": ["string", "null"]}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_ERRORS_KEY = {
    "400": _error("The body is not JSON, not an object, or 'items' is not an array."),
    "401": _error("No API key, or an unknown or revoked one."),
    "403": _error("The credential is not an integration API key."),
    "404": _error("A single item's subject does not exist in the key's jurisdiction."),
    "413": _error(
        "The body is larger than max_body_bytes or the batch has more items than ingest_max_batch."
    ),
    "415": _error("The body is not sent as application/json."),
    "422": _error("A single item is invalid (the error names the field), or 'items' is empty."),
    "429": {
        **_error("The key is over its rate (ingest_rate_per_s items per second)."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    },
}
_ERRORS_SESSION = {
    "401": _error("Not logged in."),
    "403": _error(
        "The role may not do this, the CSRF token is missing, or the place is outside the caller's jurisdiction."
    ),
    "422": _error("A query parameter or a body field is invalid."),
}


def _ingest(item: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "security": [{"apiKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                _ref(item),
                                {
                                    "type": "object",
                                    "required": ["items"],
                                    "properties": {
                                        "items": {
                                            "type": "array",
                                            "items": _ref(item),
                                            "minItems": 1,
                                            "maxItems": 1000,
                                        }
                                    },
                                },
                            ]
                        }
                    }
                },
            },
            "responses": {
                "201": _json(_ref("ItemResult"), "One item, accepted."),
                "200": _json(
                    {"anyOf": [_ref("BatchResult"), _ref("ItemResult")]},
                    "A batch, answered per item; or one item that repeats an event_id already "
                    "stored (status duplicate, with the first delivery's result).",
                ),
                **_ERRORS_KEY,
            },
        }
    }


def _schemas() -> dict[str, Any]:
    event_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "description": "Idempotency key.",
    }
    subject_id = {"type": "string", "minLength": 1, "maxLength": 64}
    at = {
        **_TIME,
        "description": "ISO 8601 with a UTC offset; not in the future, within retention.",
    }
    alarm_props: dict[str, Any] = {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": [str(k) for k in AlarmKind]},
        "severity": {"type": "string", "enum": [str(s) for s in Severity]},
        "state": {"type": "string"},
        "suppressed": {"type": "boolean"},
        "subject_id": {"type": "string"},
        "subject_name": {"type": "string"},
        "level": {"type": "string"},
        "street_id": {"type": "string"},
        "district_id": {"type": "string"},
        "version": {"type": "integer"},
        "count": {"type": "integer"},
        "first_seen": _TIME,
        "last_seen": _TIME,
        "window_start": _NULL_TIME,
        "window_end": _NULL_TIME,
        "checkin_event_id": _NULL_STR,
        "details": {"type": "object"},
        "created_at": _NULL_TIME,
        "updated_at": _NULL_TIME,
        "closed_at": _NULL_TIME,
    }
    alarm_required = [
        "id", "kind", "severity", "state", "suppressed", "subject_id", "subject_name", "level",
        "street_id", "district_id", "version", "count", "first_seen", "last_seen",
    ]  # fmt: skip
    leave_props = {
        "id": {"type": "integer"},
        "subject_id": {"type": "string"},
        "destination": {"type": "string"},
        "reason": {"type": "string"},
        "starts_at": _TIME,
        "ends_at": _TIME,
        "state": {"type": "string", "enum": ["active", "returned", "overdue", "cancelled"]},
        "returned_at": _NULL_TIME,
        "created_by": {"type": "string"},
    }
    suppression_props = {
        "id": {"type": "integer"},
        "subject_id": {"type": "string"},
        "kinds": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string"},
        "starts_at": _TIME,
        "until": _TIME,
        "created_by": {"type": "string"},
        "revoked_at": _NULL_TIME,
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                }
            },
        },
        "Checkin": {
            "type": "object",
            "required": ["event_id", "subject_id", "at", "source"],
            "properties": {
                "event_id": event_id,
                "subject_id": subject_id,
                "at": at,
                "source": {"type": "string", "enum": [str(s) for s in CheckinSource]},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "accuracy_m": {"type": "number", "minimum": 0},
                "face_verified": {"type": "boolean"},
            },
            "description": "lat and lon go together. A check-in inside the city (or from a "
            "terminal or an officer) after an approved leave began closes the leave.",
        },
        "DeviceEvent": {
            "type": "object",
            "required": ["event_id", "subject_id", "device_id", "kind", "at"],
            "properties": {
                "event_id": event_id,
                "subject_id": subject_id,
                "device_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "kind": {"type": "string", "enum": [str(k) for k in DeviceEventKind]},
                "at": at,
                "battery_pct": {"type": "number", "minimum": 0, "maximum": 100},
            },
        },
        "LocationFix": {
            "type": "object",
            "required": ["event_id", "subject_id", "device", "at", "lat", "lon", "accuracy_m"],
            "properties": {
                "event_id": event_id,
                "subject_id": subject_id,
                "device": {"type": "string", "enum": [str(d) for d in DeviceType]},
                "device_id": {"type": "string", "maxLength": 64},
                "at": at,
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "accuracy_m": {"type": "number", "minimum": 0},
            },
        },
        "ItemResult": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "index": {"type": "integer", "description": "Position in the batch."},
                "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                "event_id": {"type": "string"},
                "window_start": {
                    **_NULL_TIME,
                    "description": "Check-ins: the window this check-in counts for.",
                },
                "late": {"type": "boolean", "description": "Check-ins: after the deadline."},
                "error": {"$ref": "#/components/schemas/Error/properties/error"},
            },
        },
        "BatchResult": {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": _ref("ItemResult")}},
        },
        "Alarm": {"type": "object", "required": alarm_required, "properties": alarm_props},
        "AlarmList": {
            "type": "object",
            "required": ["items", "total"],
            "properties": {
                "items": {"type": "array", "items": _ref("Alarm")},
                "total": {"type": "integer"},
                "page": {"type": "integer"},
                "page_size": {"type": "integer"},
            },
        },
        "AlarmDetail": {
            "allOf": [
                _ref("Alarm"),
                {
                    "type": "object",
                    "properties": {
                        "events": {"type": "array", "items": {"type": "object"}},
                        "checkins": {"type": "array", "items": {"type": "object"}},
                        "locations": {"type": "array", "items": {"type": "object"}},
                    },
                },
            ]
        },
        "LeaveIn": {
            "type": "object",
            "required": ["destination", "ends_at"],
            "properties": {
                "destination": {"type": "string", "minLength": 1, "maxLength": 128},
                "reason": {"type": "string", "maxLength": 255},
                "starts_at": _TIME,
                "ends_at": _TIME,
            },
        },
        "Leave": {"type": "object", "required": list(leave_props), "properties": leave_props},
        "SuppressionIn": {
            "type": "object",
            "required": ["reason", "until"],
            "properties": {
                "reason": {"type": "string", "minLength": 1, "maxLength": 255},
                "starts_at": _TIME,
                "until": {**_TIME, "description": "At most 90 days ahead."},
                "kinds": {
                    "type": "array",
                    "items": {"type": "string", "enum": [str(k) for k in AlarmKind]},
                    "description": "Empty or absent: every kind.",
                },
            },
        },
        "Suppression": {
            "type": "object",
            "required": list(suppression_props),
            "properties": suppression_props,
        },
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _subject_path() -> dict[str, Any]:
    return {"name": "subject_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _staff(op: dict[str, Any], *, write: bool) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = (
        [{"session": [], "csrf": []}] if write else [{"session": []}]
    )
    return {"security": security, **op, "responses": {**op["responses"], **_ERRORS_SESSION}}


def _subject_collection(
    schema: str, post_summary: str, get_summary: str, list_label: str, not_found: dict[str, Any]
) -> dict[str, Any]:
    """A subject's leaves or suppressions: create one (staff write), list the latest."""
    return {
        "post": _staff(
            {
                "summary": post_summary,
                "parameters": [_subject_path()],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(f"{schema}In")}},
                },
                "responses": {
                    "201": _json(_ref(schema), f"The {schema.lower()}."),
                    "400": _error("The body is not a JSON object."),
                    "404": not_found,
                    "415": _error("The body is not JSON."),
                },
            },
            write=True,
        ),
        "get": _staff(
            {
                "summary": get_summary,
                "parameters": [_subject_path()],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": _ref(schema)}},
                        },
                        list_label,
                    ),
                    "404": not_found,
                },
            },
            write=False,
        ),
    }


@cache
def document() -> dict[str, Any]:
    """The whole document: the engine's paths and those other packages contribute."""
    from web.api_rooms import rooms_paths
    from web.openapi_workflow import workflow_paths

    doc = _own_document()
    for extra in (workflow_paths(), rooms_paths()):
        for path, ops in extra.items():
            doc["paths"].setdefault(path, {}).update(ops)
    return doc


def own_paths() -> frozenset[str]:
    """The paths this module documents itself (the rest are merged in)."""
    return frozenset(_own_document()["paths"])


def _own_document() -> dict[str, Any]:
    enum_list = "Comma-separated values among: "
    not_found = _error("No such subject (or alarm) in the caller's jurisdiction.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Command center: ingestion and alarms",
            "version": "1",
            "description": 'Errors everywhere are {"error": {"code", "message", '
            '"details"?}}. Ingestion is idempotent on event_id.',
        },
        "paths": {
            "/api/v1/checkins": _ingest(
                "Checkin",
                "Record check-ins (one, or a batch of up to 1,000)",
                "A check-in satisfies the window it falls in; one after the deadline but "
                "within checkin_lateness_s marks that window's no_checkin alarm late_checkin.",
            ),
            "/api/v1/device-events": _ingest(
                "DeviceEvent",
                "Record device events: tamper, low battery, SOS, offline, online",
                "tamper, sos, low_battery and offline raise alarms; online clears offline.",
            ),
            "/api/v1/locations": _ingest(
                "LocationFix",
                "Record phone and bracelet location fixes",
                "Fixes drive out_of_bounds (consecutive fixes outside the city, unless on "
                "leave) and separation (phone and bracelet far apart while both are fresh).",
            ),
            "/api/v1/alarms": {
                "get": _staff(
                    {
                        "summary": "List alarms in the caller's jurisdiction, newest first",
                        "parameters": [
                            _query("state", enum_list + ", ".join(AlarmState)),
                            _query("kind", enum_list + ", ".join(AlarmKind)),
                            _query("severity", enum_list + ", ".join(Severity)),
                            _query("district", "District id."),
                            _query("street", "Street id."),
                            _query("subject", "Subject id."),
                            _query(
                                "suppressed",
                                "true: only suppressed alarms; default: none unless "
                                "state=suppressed.",
                                {"type": "string", "enum": ["true", "false"]},
                            ),
                            _query("page", "From 1.", {"type": "integer", "minimum": 1}),
                            _query(
                                "page_size",
                                "1–500, default 50.",
                                {"type": "integer", "minimum": 1, "maximum": 500},
                            ),
                        ],
                        "responses": {"200": _json(_ref("AlarmList"), "A page of alarms.")},
                    },
                    write=False,
                )
            },
            "/api/v1/alarms/{alarm_id}": {
                "get": _staff(
                    {
                        "summary": "One alarm with its timeline, 14 days of check-ins and "
                        "24 hours of location fixes",
                        "parameters": [
                            {
                                "name": "alarm_id",
                                "in": "path",
                                "required": True,
                                "schema": {"type": "integer"},
                            }
                        ],
                        "responses": {
                            "200": _json(_ref("AlarmDetail"), "The alarm."),
                            "404": not_found,
                        },
                    },
                    write=False,
                )
            },
            "/api/v1/subjects/{subject_id}/leaves": _subject_collection(
                "Leave",
                "Approve a leave (audited)",
                "The subject's latest leaves",
                "Leaves, newest first.",
                not_found,
            ),
            "/api/v1/subjects/{subject_id}/suppressions": _subject_collection(
                "Suppression",
                "Suppress a subject's alarms until a time, with a reason "
                "(audited; alarms are recorded as suppressed, not raised)",
                "The subject's latest suppressions",
                "Suppressions, newest first.",
                not_found,
            ),
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
                }
            },
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An integration API key (python run.py create-key).",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "center_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
    }


@public
async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: public, like any API description."""
    return json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
