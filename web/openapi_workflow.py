"""OpenAPI paths of the duty workflow, merged into :func:`web.openapi.document`."""

from __future__ import annotations

from typing import Any

_ERR: dict[str, Any] = {"type": "object", "properties": {"error": {"type": "object"}}}


def _resp(desc: str, codes: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": desc}}
    for code, text in (codes or {}).items():
        out[code] = {"description": text, "content": {"application/json": {"schema": _ERR}}}
    return out


def _q(name: str, desc: str, *, required: bool = False, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt:
        schema["format"] = fmt
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": desc,
        "schema": schema,
    }


_ID = {"name": "alarm_id", "in": "path", "required": True, "schema": {"type": "integer"}}
ACTION_BODY = {
    "type": "object",
    "required": ["action", "version"],
    "properties": {
        "action": {
            "enum": ["acknowledge", "dispatch", "report", "resolve", "close", "reopen", "note"]
        },
        "version": {"type": "integer", "description": "the alarm's current version"},
        "note": {
            "type": "string",
            "maxLength": 4000,
            "description": "required for report, resolve, reopen, note",
        },
        "disposition": {
            "enum": [
                "false_alarm",
                "excused",
                "warned",
                "formal_warning",
                "referred_police",
                "revocation",
            ],
            "description": "required for resolve",
        },
    },
}
_REFUSALS = {
    "403": "the caller's level may not do this action (or not while another level owns it)",
    "404": "no such alarm in the caller's jurisdiction",
    "409": "conflict (stale version) or invalid_transition (wrong state)",
    "422": "validation_failed",
}


def workflow_paths() -> dict[str, Any]:
    day = [_q("district", "district id"), _q("street", "street id")]
    return {
        "/api/v1/alarms/{alarm_id}/actions": {
            "post": {
                "summary": "Act on an alarm (lifecycle transition or note)",
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ACTION_BODY}},
                },
                "responses": _resp("the updated alarm", _REFUSALS),
            }
        },
        "/api/v1/alarms/actions": {
            "post": {
                "summary": "Bulk action (each alarm in its own transaction)",
                "responses": _resp("a result per item"),
            }
        },
        "/api/v1/alarms/queue": {
            "get": {
                "summary": "The console queue: open alarms by severity then age, with SLA fields",
                "parameters": [
                    _q("state", "comma-separated states"),
                    _q("kind", "comma-separated kinds"),
                    *day,
                    _q("level", "owner level: street, district, city"),
                    _q("offset", "offset"),
                    _q("limit", "page size (≤ 2000)"),
                ],
                "responses": _resp("items, total"),
            }
        },
        "/api/v1/alarms/{alarm_id}/workflow": {
            "get": {
                "summary": "Alarm with timeline, the caller's allowed actions and evidence",
                "parameters": [_ID],
                "responses": _resp("the alarm", {"404": _REFUSALS["404"]}),
            }
        },
        "/api/v1/alarms/{alarm_id}/evidence": {
            "get": {
                "summary": "Evidence of an alarm",
                "parameters": [_ID],
                "responses": _resp("items"),
            },
            "post": {
                "summary": "Upload evidence (multipart 'file', optional 'note'): JPEG, PNG or PDF",
                "parameters": [_ID],
                "responses": {
                    "201": {"description": "the evidence record with its SHA-256"},
                    "413": {"description": "larger than evidence_max_bytes"},
                    "415": {"description": "not JPEG, PNG or PDF by content"},
                },
            },
        },
        "/api/v1/evidence/{evidence_id}": {
            "get": {
                "summary": "Download evidence (SHA-256 re-checked, X-Content-SHA256 header)",
                "parameters": [
                    {
                        "name": "evidence_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": _resp("the file", {"404": "not found or outside the jurisdiction"}),
            }
        },
        "/api/v1/duty/staffing": {
            "get": {
                "summary": "On duty at the city center vs the minimum",
                "responses": _resp("staffing"),
            }
        },
        "/api/v1/duty/on-duty": {
            "get": {
                "summary": "Signed-on officers and recent handover notes",
                "responses": _resp("items"),
            }
        },
        "/api/v1/duty/sign-on": {
            "post": {
                "summary": "Sign on (optionally to a rostered shift)",
                "responses": _resp("sign-on and handovers", {"409": "already signed on"}),
            }
        },
        "/api/v1/duty/sign-off": {
            "post": {
                "summary": "Sign off with a handover note (required)",
                "responses": _resp(
                    "sign-on", {"409": "not signed on", "422": "handover_note missing"}
                ),
            }
        },
        "/api/v1/duty/shifts": {
            "get": {
                "summary": "Roster",
                "parameters": [
                    _q("from", "start", fmt="date-time"),
                    _q("to", "end", fmt="date-time"),
                    _q("jurisdiction", "id"),
                ],
                "responses": _resp("items"),
            },
            "post": {
                "summary": "Add a rostered shift (duty, admin)",
                "responses": {"201": {"description": "the shift"}},
            },
        },
        "/api/v1/reports/daily": {
            "get": {
                "summary": "Daily report (JSON)",
                "parameters": [_q("date", "local date, default yesterday", fmt="date"), *day],
                "responses": _resp("the report"),
            }
        },
        "/api/v1/reports/daily.csv": {
            "get": {
                "summary": "Daily report (CSV)",
                "parameters": [_q("date", "local date", fmt="date"), *day],
                "responses": _resp("CSV"),
            }
        },
        "/api/v1/reports/range": {
            "get": {
                "summary": "Report for a date range (JSON)",
                "parameters": [
                    _q("from", "first date", fmt="date"),
                    _q("to", "last date", fmt="date"),
                    *day,
                ],
                "responses": _resp("the report"),
            }
        },
        "/api/v1/reports/range.csv": {
            "get": {
                "summary": "Report for a date range (CSV)",
                "parameters": [
                    _q("from", "first date", fmt="date"),
                    _q("to", "last date", fmt="date"),
                    *day,
                ],
                "responses": _resp("CSV"),
            }
        },
    }
