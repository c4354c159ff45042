"""Declared HTTP contracts: each handler's request and response models, beside its policy.

``@contract(...)`` is to HTTP what ``@command(type, schema)`` is to the websocket: the
handler says which path, query and body models it takes and which model it answers with,
one wrapper decodes and validates them once (msgspec: a single C pass per body), and
:mod:`web.openapi` generates the served document from the same declarations, so the two
cannot drift apart. Handlers receive typed objects and return a model (or any
msgspec-encodable value); a handler that streams returns its own ``web.StreamResponse``.

The rule for unknown fields (README, "HTTP API"): staff request bodies and websocket
commands refuse them, since a typo there changes meaning (``forbid_unknown_fields`` on the
model); ingestion items ignore them, since vendors send more than we read; unknown query
parameters are ignored (browsers add cache-busters).
"""

from __future__ import annotations

import enum
import functools
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date as date_type
from typing import Any, Final, TypeVar, cast

import msgspec
from aiohttp import web

from center.errors import (
    BadRequest,
    InvalidJson,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from center.text import PLAIN
from center.years import year_problem

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_TYPES: Final = ("application/json", "text/json")
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<loc>[^`]*)`)?$", re.S)
_PLAIN = re.compile(PLAIN.pattern or "")


@dataclass(frozen=True, slots=True)
class Batch:
    """A body that is one item or ``{"items": [...]}`` (the ingestion shape).

    Each item is decoded on its own, so one bad item never loses the good ones; the
    handler gets a :class:`BatchBody` with the decoded items and the per-item problems.
    ``max_items`` names the setting that bounds the batch (413 above, ``maxItems`` in the
    document).
    """

    item: type[msgspec.Struct]
    max_items_setting: str = "ingest_max_batch"


@dataclass(frozen=True, slots=True)
class Multipart:
    """A ``multipart/form-data`` body the handler reads itself (uploads), documented by its
    part names."""

    parts: Mapping[str, str]
    required: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JpegOr:
    """A body that is a JPEG (``Content-Type: image/jpeg``, handed over as ``bytes``) or the
    JSON ``model`` (photo uploads that may instead name a stored photo)."""

    model: type[msgspec.Struct]


@dataclass(frozen=True, slots=True)
class Contract:
    """What one operation takes and answers; read by the wrapper and by the OpenAPI walk."""

    summary: str
    description: str = ""
    path: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    body: type[msgspec.Struct] | Batch | Multipart | JpegOr | None = None
    response: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"
    tags: tuple[str, ...] = ()
    responses: Mapping[int, str] = field(default_factory=dict)


class _Envelope(msgspec.Struct):
    items: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET


@dataclass(slots=True)
class BatchBody:
    """A decoded :class:`Batch` body: each entry is the decoded model, or the
    :class:`ValidationFailed` that says what is wrong with that item; ``single`` when the
    body was one bare item (answered with that item's result or error, not a list)."""

    single: bool
    entries: list[Any]


# -- decoding ---------------------------------------------------------------------------------


def _loc(raw: str | None) -> str:
    """``$.items[0].lat`` (msgspec) → ``items[0].lat``."""
    if not raw:
        return ""
    return raw[1:] if raw.startswith(".") else raw


def _split(err: msgspec.ValidationError) -> tuple[str, str]:
    m = _AT.match(str(err))
    assert m is not None
    loc, msg = _loc(m.group("loc")), m.group("msg")
    named = _NAMED.match(msg)
    if not loc and named:  # a cross-field rule names its field: "'lon' is required with 'lat'"
        return named.group(1), named.group(2)
    return loc, humanize(msg)


_NAMED = re.compile(r"^'([A-Za-z_][\w]*)' (.+)$", re.S)
_KINDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "object": "an object",
    "array": "an array",
    "datetime": "an RFC 3339 time with a UTC offset",
    "date": "a date (YYYY-MM-DD)",
}
_RULES: Final = (
    (re.compile(r"^Expected `(?:float|int)` (<=|>=|<|>) (\S+)$"), "bound"),
    (re.compile(r"^Expected `str` of length <= (\d+)$"), "max_len"),
    (re.compile(r"^Expected `str` of length >= (\d+)$"), "min_len"),
    (re.compile(r"^Expected `str` matching regex .*$", re.S), "pattern"),
    (re.compile(r"^Expected `datetime` with a timezone component$"), "tz"),
    (re.compile(r"^Expected `([^`]+)`, got `([^`]+)`$"), "type"),
    (re.compile(r"^Invalid enum value (.+)$"), "enum"),
    (re.compile(r"^Object missing required field `([^`]+)`$"), "missing"),
    (re.compile(r"^Number out of range$"), "range"),
)
_BOUND: Final = {"<=": "at most", ">=": "at least", "<": "less than", ">": "more than"}


def _num(text: str) -> str:
    return text[:-2] if text.endswith(".0") else text


def humanize(msg: str) -> str:
    """msgspec's terse messages in plain words (what a vendor's developer reads in a log)."""
    for pattern, kind in _RULES:
        m = pattern.match(msg)
        if m is None:
            continue
        if kind == "bound":
            return f"must be {_BOUND[m.group(1)]} {_num(m.group(2))}"
        if kind == "max_len":
            return f"must be at most {m.group(1)} characters"
        if kind == "min_len":
            return "must not be empty" if m.group(1) == "1" else f"needs {m.group(1)} characters"
        if kind == "pattern":
            return "must be printable text with no control characters"
        if kind == "tz":
            return "needs a UTC offset (e.g. +08:00 or Z)"
        if kind == "type":
            want = " or ".join(_KINDS.get(t.strip(), t.strip()) for t in m.group(1).split("|"))
            return f"must be {want}, not {_KINDS.get(m.group(2), m.group(2))}"
        if kind == "enum":
            return f"{m.group(1)} is not one of the allowed values"
        if kind == "missing":
            return f"{m.group(1)} is required"
        return "is out of range"
    return msg


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


def _problems(obj: Any, model: Any, prefix: str, strict: bool) -> dict[str, str]:
    """Every bad field of ``obj`` against ``model`` (msgspec stops at the first, so the slow
    path — taken only for a body that already failed — checks field by field)."""
    if not (isinstance(model, type) and issubclass(model, msgspec.Struct)) or not isinstance(
        obj, dict
    ):
        try:
            msgspec.convert(obj, model, strict=strict)
        except msgspec.ValidationError as err:
            loc, msg = _split(err)
            return {_join(prefix, loc) or prefix or "body": msg}
        return {}
    out: dict[str, str] = {}
    info = msgspec.structs.fields(model)
    names = {f.encode_name for f in info}
    if model.__struct_config__.forbid_unknown_fields:
        for key in obj:
            if key not in names:
                out[_join(prefix, str(key))] = "unknown field"
    for f in info:
        where = _join(prefix, f.encode_name)
        if f.encode_name not in obj:
            if f.required:
                out[where] = "required"
            continue
        try:
            msgspec.convert(obj[f.encode_name], f.type, strict=strict)
        except msgspec.ValidationError as err:
            loc, msg = _split(err)
            values = _enum_values(f.type)
            if values and not loc and msg.endswith("is not one of the allowed values"):
                msg = f"must be one of {', '.join(values)}"
            out[_join(where, loc) if loc else where] = msg
    if not out:  # a cross-field rule (__post_init__) failed
        try:
            msgspec.convert(obj, model, strict=strict)
        except msgspec.ValidationError as err:
            loc, msg = _split(err)
            out[_join(prefix, loc) or prefix or "body"] = msg
    return out


def _enum_values(tp: Any) -> list[str]:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(m.value) for m in tp]
    origin = typing.get_origin(tp)
    if origin is typing.Annotated or origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            found = _enum_values(arg)
            if found:
                return found
    return []


def in_calendar(obj: T) -> T:
    """``obj`` if every date and time in it lies in the accepted years of
    :mod:`center.years`, else a :func:`validation_error` naming each field outside."""
    problems: dict[str, str] = {}
    _dates(obj, "", problems)
    if problems:
        raise validation_error(problems)
    return obj


def _dates(value: Any, where: str, problems: dict[str, str]) -> None:
    if isinstance(value, date_type):
        problem = year_problem(value)
        if problem:
            problems[where or "$"] = problem
    elif isinstance(value, msgspec.Struct):
        for name, encoded in zip(
            value.__struct_fields__, value.__struct_encode_fields__, strict=True
        ):
            _dates(getattr(value, name), f"{where}.{encoded}" if where else encoded, problems)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _dates(item, f"{where}[{i}]", problems)


def text_part(raw: bytes, name: str) -> str:
    """A :class:`Multipart` text part as ``str`` under the one text rule of
    :mod:`center.text` (the handler reads multipart bodies itself, so it checks here what
    a JSON body's decoder checks): 422 naming the part for bad UTF-8 or a control
    character."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise validation_error({name: "is not UTF-8 text"}) from None
    if not _PLAIN.match(text):
        raise validation_error({name: "must not hold control characters"})
    return text


def validation_error(problems: Mapping[str, str], what: str = "request") -> ValidationFailed:
    """The one 422 (:meth:`center.errors.ValidationFailed.of`)."""
    return ValidationFailed.of(problems, what)


def convert(obj: Any, model: type[T], *, strict: bool = True, what: str = "request") -> T:
    """``obj`` (parsed JSON) as ``model``, or a :func:`validation_error` naming every bad
    field. Also used by the websocket dispatcher, so both speak one error shape."""
    try:
        return in_calendar(msgspec.convert(obj, model, strict=strict))
    except msgspec.ValidationError:
        raise validation_error(
            _problems(obj, model, "", strict) or {"body": "invalid"}, what
        ) from None


def decode(raw: bytes, model: type[T], *, what: str = "body") -> T:
    """One C pass from bytes to ``model``; on failure, the slow path names every field."""
    try:
        return msgspec.json.decode(raw, type=model)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.ValidationError:
        obj = _parse(raw)
        raise validation_error(
            _problems(obj, model, "", True) or {"body": "invalid"}, what
        ) from None
    except msgspec.DecodeError:
        _parse(raw)
        raise  # unreachable: _parse raises for what msgspec could not decode


def _parse(raw: bytes) -> Any:
    """The slow path's parse (only after a typed decode failed): the standard library keeps
    numbers msgspec refuses (``1e400``, 400-digit integers), so the field gets the blame."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None


def decode_batch(raw: bytes, spec: Batch, max_items: int) -> BatchBody:
    """Decode a :class:`Batch` body item by item (see :class:`Batch`)."""
    try:
        env = msgspec.json.decode(raw, type=_Envelope)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.ValidationError:
        obj = _parse(raw)
        if isinstance(obj, dict):
            raise BadRequest("'items' must be a JSON array") from None
        raise BadRequest('the body must be one JSON object or {"items": [...]}') from None
    except msgspec.DecodeError as exc:
        if _is_object(raw):
            raise InvalidJson(f"the body is not valid JSON: {exc}") from None
        _parse(raw)
        raise BadRequest('the body must be one JSON object or {"items": [...]}') from None
    if env.items is msgspec.UNSET:
        raws: list[Any] = [raw]
        single = True
    else:
        raws = env.items
        single = False
        if len(raws) > max_items:
            raise PayloadTooLarge(
                f"a batch holds at most {max_items} items, not {len(raws)}",
                details={"max_items": max_items},
            )
        if not raws:
            raise ValidationFailed("'items' is empty", details={"field": "items", "fields": {}})
    decoder = _decoder(spec.item)
    entries: list[Any] = []
    for one in raws:
        try:
            entries.append(decoder.decode(one))
        except RecursionError:
            entries.append(validation_error({"item": "is nested too deeply"}, "item"))
        except msgspec.ValidationError:
            obj = _parse(bytes(one))
            if not isinstance(obj, dict):
                entries.append(validation_error({"item": "must be a JSON object"}, "item"))
            else:
                entries.append(validation_error(_problems(obj, spec.item, "", True), "item"))
    return BatchBody(single, entries)


def _too_deep() -> BadRequest:
    return InvalidJson("the body is not valid JSON: it is nested too deeply")


def _is_object(raw: bytes) -> bool:
    return raw.lstrip()[:1] == b"{"


@functools.cache
def _decoder(model: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(model)


def _query(request: web.Request, model: type[T]) -> T:
    lists = _list_fields(cast(Any, model))
    data: dict[str, Any] = {}
    for key, value in request.query.items():
        if key in lists:
            data[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif value != "":
            data[key] = value
    try:
        return msgspec.convert(data, model, strict=False)
    except msgspec.ValidationError:
        problems = _problems(data, model, "", False)
        raise validation_error(problems or {"query": "invalid"}, "query") from None


@functools.cache
def _list_fields(model: Any) -> frozenset[str]:
    """Query fields typed as lists: their value is comma-separated (``state=new,acknowledged``)."""
    return frozenset(f.encode_name for f in msgspec.structs.fields(model) if _is_list(f.type))


def _is_list(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_list(typing.get_args(tp)[0])
    if origin in (types.UnionType, typing.Union):
        return any(_is_list(a) for a in typing.get_args(tp))
    return origin in (list, tuple, set, frozenset)


def _path(request: web.Request, model: type[T]) -> T:
    """Path parameters; anything that does not fit is a 404 (it names no object)."""
    try:
        return msgspec.convert(dict(request.match_info), model, strict=False)
    except msgspec.ValidationError:
        raise NotFound("no such resource") from None


async def _body_bytes(request: web.Request, *, jpeg: bool = False) -> bytes:
    limit = _settings(request).max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; the limit is {limit}",
            details={"max_body_bytes": limit},
        )
    ctype = request.content_type
    if jpeg:
        return await request.read()
    if ctype not in JSON_TYPES and not ctype.endswith("+json"):
        raise UnsupportedMediaType("send the body as JSON (Content-Type: application/json)")
    return await request.read()


# -- encoding ---------------------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode(value: Any) -> bytes:
    return _ENCODER.encode(value)


def respond(
    value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_ENCODER.encode(value),
        status=status,
        headers=headers,
        content_type="application/json",
    )


# -- the decorator ----------------------------------------------------------------------------


def contract(
    summary: str,
    *,
    path: type[msgspec.Struct] | None = None,
    query: type[msgspec.Struct] | None = None,
    body: type[msgspec.Struct] | Batch | Multipart | JpegOr | None = None,
    response: Any = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
    description: str = "",
    responses: Mapping[int, str] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Handler]:
    """Declare an operation; the wrapped handler is called as
    ``handler(request, *, path=…, query=…, body=…)`` with only the declared ones, and its
    return value is encoded with ``status`` unless it is already a response.

    Put it *under* ``@policy`` (the policy goes on the outer function the router sees).
    """
    spec = Contract(
        summary=summary,
        description=description,
        path=path,
        query=query,
        body=body,
        response=response,
        status=status,
        errors=errors,
        media_type=media_type,
        responses=dict(responses or {}),
    )

    def deco(fn: Callable[..., Awaitable[Any]]) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            kwargs: dict[str, Any] = {}
            if spec.path is not None:
                kwargs["path"] = _path(request, spec.path)
            if spec.query is not None:
                kwargs["query"] = in_calendar(_query(request, spec.query))
            if isinstance(spec.body, JpegOr) and request.content_type == "image/jpeg":
                kwargs["body"] = await _body_bytes(request, jpeg=True)
            elif spec.body is not None and not isinstance(spec.body, Multipart):
                raw = await _body_bytes(request)
                if isinstance(spec.body, Batch):
                    # items judge their times against the clock (retention, future skew)
                    limit = getattr(_settings(request), spec.body.max_items_setting)
                    kwargs["body"] = decode_batch(raw, spec.body, limit)
                else:
                    model = spec.body.model if isinstance(spec.body, JpegOr) else spec.body
                    kwargs["body"] = in_calendar(decode(raw, model))
            result = await fn(request, **kwargs)
            if isinstance(result, web.StreamResponse):
                return result
            return respond(result, status=spec.status)

        handler.__center_contract__ = spec  # type: ignore[attr-defined]
        return handler

    return deco


def _settings(request: web.Request) -> Any:
    from web import keys

    return request.app[keys.SETTINGS]


def get_contract(handler: Any) -> Contract | None:
    return getattr(handler, "__center_contract__", None)
