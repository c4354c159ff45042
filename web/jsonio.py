"""JSON in and out of handlers: one reader that turns bad bodies into clear 4xx errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from center.errors import BadRequest, CenterError, InvalidJson, UnsupportedMediaType, error_body


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(obj: Any) -> Any:
    from datetime import datetime

    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


def error_response(err: CenterError) -> web.Response:
    return json_response(
        {"error": error_body(err.code, err.message, err.details)},
        status=err.status,
        headers=err.headers or None,
    )


async def read_json(request: web.Request) -> Any:
    """The parsed body; 415 without a JSON content type, 400 for malformed JSON."""
    ctype = request.content_type
    if ctype not in ("application/json", "text/json") and not ctype.endswith("+json"):
        raise UnsupportedMediaType("send the body as JSON (Content-Type: application/json)")
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
