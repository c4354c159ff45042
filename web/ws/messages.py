"""The message envelopes of the websocket protocol (DESIGN.md §4), built in one place.

Every outgoing message is one of three shapes: a ``result`` (success or error) answering a
command by its ``id``, or an ``event`` carrying the subscribe ``id``. Events are serialised
once per recipient class and wrapped per client with :func:`event_frame`, which splices the
already-encoded body into the envelope instead of encoding it again.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, TypedDict

from center.errors import error_body


class ErrorBody(TypedDict):
    code: str
    message: str
    details: NotRequired[Any]


class ResultMessage(TypedDict):
    id: int | None
    type: Literal["result"]
    success: bool
    result: NotRequired[Any]
    error: NotRequired[ErrorBody]


class EventBody(TypedDict):
    type: str
    seq: int
    data: Any
    epoch: NotRequired[str]
    at: NotRequired[float]


class EventMessage(TypedDict):
    id: int
    type: Literal["event"]
    event: EventBody


def dumps(obj: Any) -> str:
    """Compact UTF-8 JSON (Chinese stays readable; no NaN, which browsers cannot parse)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def result_message(msg_id: int | None, result: Any = None) -> ResultMessage:
    return {"id": msg_id, "type": "result", "success": True, "result": result}


def error_message(
    msg_id: int | None, code: str, message: str, details: Any = None
) -> ResultMessage:
    body = error_body(code, message, details)
    return {"id": msg_id, "type": "result", "success": False, "error": body}  # type: ignore[typeddict-item]


def event_body(
    type: str, seq: int, data: Any, *, epoch: str | None = None, at: float | None = None
) -> EventBody:
    body: EventBody = {"type": type, "seq": seq, "data": data}
    if epoch is not None:
        body["epoch"] = epoch
    if at is not None:
        body["at"] = at
    return body


def event_frame(sub_id: int, encoded_event: str) -> str:
    """``{"id": sub_id, "type": "event", "event": <encoded_event>}`` without re-encoding."""
    return f'{{"id":{int(sub_id)},"type":"event","event":{encoded_event}}}'
