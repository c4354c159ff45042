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

import functools
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

import msgspec
from aiohttp import web

from center.errors import (
    INVALID_JSON,
    UNSUPPORTED_MEDIA_TYPE,
    BadRequest,
    CenterError,
    NotFound,
    ValidationFailed,
)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")

JSON_TYPES: Final = ("application/json", "text/json")
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<loc>[^`]*)`)?$", re.S)


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
class Contract:
    """What one operation takes and answers; read by the wrapper and by the OpenAPI walk."""

    summary: str
    description: str = ""
    path: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    body: type[msgspec.Struct] | Batch | Multipart | None = None
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
    """A decoded :class:`Batch` body: ``items[i]`` is the model or ``None`` where
    ``problems[i]`` says what is wrong; ``single`` when the body was one bare item."""

    single: bool
    items: list[Any]
    problems: list[ValidationFailed | None]


# -- decoding ---------------------------------------------------------------------------------


def _loc(raw: str | None) -> str:
    """``$.items[0].lat`` (msgspec) → ``items[0].lat``."""
    if not raw:
        return ""
    return raw[1:] if raw.startswith(".") else raw


def _split(err: msgspec.ValidationError) -> tuple[str, str]:
    m = _AT.match(str(err))
    assert m is not None
    return _loc(m.group("loc")), m.group("msg")


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
            out[_join(where, loc) if loc else where] = msg
    if not out:  # a cross-field rule (__post_init__) failed
        try:
            msgspec.convert(obj, model, strict=strict)
        except msgspec.ValidationError as err:
            loc, msg = _split(err)
            out[_join(prefix, loc) or prefix or "body"] = msg
    return out


def validation_error(problems: Mapping[str, str], what: str = "request") -> ValidationFailed:
    """The one 422: ``details = {"field": <first bad field>, "fields": {field: problem}}``."""
    first = next(iter(problems), "")
    listed = "; ".join(f"{k}: {v}" for k, v in problems.items())
    return ValidationFailed(
        f"invalid {what}: {listed}", details={"field": first, "fields": dict(problems)}
    )


def convert(obj: Any, model: type[T], *, strict: bool = True, what: str = "request") -> T:
    """``obj`` (parsed JSON) as ``model``, or a :func:`validation_error` naming every bad
    field. Also used by the websocket dispatcher, so both speak one error shape."""
    try:
        return msgspec.convert(obj, model, strict=strict)
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
    try:
        return msgspec.json.decode(raw)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code=INVALID_JSON) from None


def _too_deep() -> BadRequest:
    """msgspec raises ``RecursionError`` for JSON nested thousands deep (still under the body
    limit): a malformed request, not a server fault."""
    return BadRequest("the body nests too deeply", code=INVALID_JSON)


def decode_batch(raw: bytes, spec: Batch, max_items: int) -> BatchBody:
    """Decode a :class:`Batch` body item by item (see :class:`Batch`)."""
    try:
        env = msgspec.json.decode(raw, type=_Envelope)
    except msgspec.ValidationError:
        obj = _parse(raw)
        if isinstance(obj, dict):
            raise BadRequest("'items' must be a JSON array") from None
        raise BadRequest('the body must be one JSON object or {"items": [...]}') from None
    except msgspec.DecodeError as exc:
        if _is_object(raw):
            raise BadRequest(f"the body is not valid JSON: {exc}", code=INVALID_JSON) from None
        _parse(raw)
        raise BadRequest('the body must be one JSON object or {"items": [...]}') from None
    if env.items is msgspec.UNSET:
        raws: list[Any] = [raw]
        single = True
    else:
        raws = env.items
        single = False
        if len(raws) > max_items:
            from center.errors import PayloadTooLarge

            raise PayloadTooLarge(
                f"a batch holds at most {max_items} items, not {len(raws)}",
                details={"max_items": max_items},
            )
        if not raws:
            raise ValidationFailed("'items' is empty", details={"field": "items", "fields": {}})
    decoder = _decoder(spec.item)
    items: list[Any] = []
    problems: list[ValidationFailed | None] = []
    for one in raws:
        try:
            items.append(decoder.decode(one))
            problems.append(None)
        except msgspec.ValidationError:
            obj = msgspec.json.decode(one)
            if not isinstance(obj, dict):
                err = validation_error({"item": "each item must be a JSON object"}, "item")
            else:
                err = validation_error(_problems(obj, spec.item, "", True), "item")
            items.append(None)
            problems.append(err)
    return BatchBody(single, items, problems)


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


async def _body_bytes(request: web.Request) -> bytes:
    ctype = request.content_type
    if ctype not in JSON_TYPES and not ctype.endswith("+json"):
        raise CenterError(
            "send the body as JSON (Content-Type: application/json)",
            code=UNSUPPORTED_MEDIA_TYPE,
            status=415,
        )
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
    body: type[msgspec.Struct] | Batch | Multipart | None = None,
    response: Any = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
    description: str = "",
    responses: Mapping[int, str] | None = None,
) -> Callable[[F], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
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

    def deco(fn: F) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            kwargs: dict[str, Any] = {}
            if spec.path is not None:
                kwargs["path"] = _path(request, spec.path)
            if spec.query is not None:
                kwargs["query"] = _query(request, spec.query)
            if spec.body is not None and not isinstance(spec.body, Multipart):
                raw = await _body_bytes(request)
                if isinstance(spec.body, Batch):
                    limit = getattr(_settings(request), spec.body.max_items_setting)
                    kwargs["body"] = decode_batch(raw, spec.body, limit)
                else:
                    kwargs["body"] = decode(raw, spec.body)
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
