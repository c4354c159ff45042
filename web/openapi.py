"""The OpenAPI 3.1 document, generated from the declared contracts and the settings.

Nothing here is written twice: the router says which operations exist, each handler's
``@contract`` says what it takes and answers (msgspec gives the JSON Schema of its models),
its ``@policy`` says who may call it, and the settings give the limits (batch size, body
size). ``tests/web/test_openapi.py`` walks the router — every ``/api/v1`` route documented,
every documented operation routed — and runs schemathesis against the served document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from aiohttp import web

from center.text import PLAIN
from config.settings import Settings
from web import keys
from web.contract import Batch, Contract, JpegOr, Multipart, contract, get_contract
from web.policy import API_KEY, DEVICE, SESSION, Policy, get_policy, public
from web.principals import SESSION_COOKIE

PREFIX: Final = "/api/v1"
_UNSAFE: Final = frozenset({"post", "put", "patch", "delete"})
_REF: Final = "#/components/schemas/{name}"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: Any = None


class Error(msgspec.Struct):
    """Every error: ``{"error": {"code", "message", "details"?}}``. A 422
    ``validation_failed`` has ``details = {"field": <first bad field>, "fields": {<field
    path>: <problem>}}``, naming every bad field."""

    error: ErrorBody


_DEFAULT_ERRORS: Final = {
    400: "The body is not JSON or not the expected shape.",
    401: "No credential, or an unknown, expired or revoked one.",
    403: "The credential may not do this (role, kind of credential, or CSRF token).",
    404: "No such object in the caller's jurisdiction.",
    409: "A conflict: stale version, or not allowed in the object's state.",
    413: "The body is larger than max_body_bytes ({max_body_bytes}) or the batch holds more "
    "than ingest_max_batch ({ingest_max_batch}) items.",
    415: "The body is not sent as application/json.",
    422: "Invalid input: details.fields names every bad field.",
    429: "Too many requests; retry after the Retry-After header's seconds.",
    503: "A dependency (database, bus) is unavailable; retry.",
}


def _security(pol: Policy, method: str) -> list[dict[str, list[str]]]:
    if pol.action is None:
        return []
    out: list[dict[str, list[str]]] = []
    if SESSION in pol.auth:
        out.append({"session": [], "csrf": []} if method in _UNSAFE else {"session": []})
    if API_KEY in pol.auth:
        out.append({"apiKey": []})
    if DEVICE in pol.auth:
        out.append({"deviceToken": []})
    return out


class _Schemas:
    """Collects every model an operation names; one msgspec pass makes the components."""

    def __init__(self) -> None:
        self._types: list[Any] = []

    def ref(self, tp: Any) -> int:
        self._types.append(tp)
        return len(self._types) - 1

    def build(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        schemas, components = msgspec.json.schema_components(self._types, ref_template=_REF)
        return list(schemas), dict(components)


def _struct_schema(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return components[ref.rsplit("/", 1)[-1]]


def _parameters(
    where: str,
    model: type[msgspec.Struct] | None,
    index: int | None,
    schemas: list[Any],
    components: dict[str, Any],
) -> list[dict[str, Any]]:
    if model is None or index is None:
        return []
    struct = _struct_schema(schemas[index], components)
    required = set(struct.get("required", ()))
    out = []
    for name, prop in struct.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if prop.get("type") == "array" or "array" in prop.get("type", ()):
            param["style"], param["explode"] = "form", False
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(
    spec: Contract, pol: Policy, settings: Settings, has_body: bool
) -> dict[str, dict[str, Any]]:
    codes = set(spec.errors)
    if pol.action is not None:
        codes |= {401, 403}
    if has_body:
        codes |= {400, 413, 415, 422}
    if spec.query is not None:
        codes.add(422)
    if spec.path is not None:
        codes.add(404)
    limits = {
        "max_body_bytes": settings.max_body_bytes,
        "ingest_max_batch": settings.ingest_max_batch,
    }
    out: dict[str, dict[str, Any]] = {}
    for code in sorted(codes):
        text = spec.responses.get(code) or _DEFAULT_ERRORS.get(code, "An error.")
        resp = _json({"$ref": _REF.format(name="Error")}, text.format(**limits))
        if code == 429:
            resp["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}
            }
        out[str(code)] = resp
    return out


def _body(
    spec: Contract, index: int | None, schemas: list[Any], settings: Settings
) -> dict[str, Any] | None:
    body = spec.body
    if body is None:
        return None
    if isinstance(body, Multipart):
        props = {name: {"type": "string", "description": text} for name, text in body.parts.items()}
        for name in body.parts:
            if name == "file":
                props[name]["format"] = "binary"
            else:  # text parts follow the one text rule, checked by the handler
                props[name]["pattern"] = PLAIN.pattern or ""
        return {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": props,
                        "required": list(body.required),
                    }
                }
            },
        }
    assert index is not None
    schema = schemas[index]
    if isinstance(body, JpegOr):
        return {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": schema},
            },
        }
    if isinstance(body, Batch):
        limit = getattr(settings, body.max_items_setting)
        schema = {
            "anyOf": [
                schema,
                {
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": schema,
                            "minItems": 1,
                            "maxItems": limit,
                        }
                    },
                },
            ]
        }
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _operations(app: web.Application) -> Iterable[tuple[str, str, Any]]:
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        path = resource.canonical
        if path.startswith(PREFIX):
            yield route.method.lower(), _PARAM.sub(r"{\1}", path), route.handler


def build(app: web.Application) -> dict[str, Any]:
    """The document for this app (its routes, its settings)."""
    settings = app[keys.SETTINGS]
    reg = _Schemas()
    reg.ref(Error)
    found: list[tuple[str, str, Contract, Policy, dict[str, Any]]] = []
    for method, path, handler in _operations(app):
        spec, pol = get_contract(handler), get_policy(handler)
        if spec is None or pol is None:
            continue  # refused by tests/web/test_openapi.py, which walks the router
        idx: dict[str, Any] = {"path": None, "query": None, "body": None, "resp": None}
        if spec.path is not None:
            idx["path"] = reg.ref(spec.path)
        if spec.query is not None:
            idx["query"] = reg.ref(spec.query)
        if isinstance(spec.body, Batch):
            idx["body"] = reg.ref(spec.body.item)
        elif isinstance(spec.body, JpegOr):
            idx["body"] = reg.ref(spec.body.model)
        elif spec.body is not None and not isinstance(spec.body, Multipart):
            idx["body"] = reg.ref(spec.body)
        if isinstance(spec.response, tuple):  # alternatives (one item, or a batch's results)
            idx["resp"] = reg.ref(spec.response[0])
            idx["alt"] = [reg.ref(tp) for tp in spec.response[1:]]
        elif spec.response is not None:
            idx["resp"] = reg.ref(spec.response)
        found.append((method, path, spec, pol, idx))
    schemas, components = reg.build()
    paths: dict[str, dict[str, Any]] = {}
    for method, path, spec, pol, idx in found:
        op: dict[str, Any] = {"summary": spec.summary, "operationId": f"{method}_{path}"}
        if spec.description:
            op["description"] = spec.description
        op["security"] = _security(pol, method)
        params = _parameters("path", spec.path, idx["path"], schemas, components)
        params += _parameters("query", spec.query, idx["query"], schemas, components)
        if params:
            op["parameters"] = params
        body = _body(spec, idx["body"], schemas, settings)
        if body is not None:
            op["requestBody"] = body
        if spec.media_type == "application/json":
            schema = schemas[idx["resp"]] if idx["resp"] is not None else {}
            if idx.get("alt"):
                schema = {"anyOf": [schema, *(schemas[i] for i in idx["alt"])]}
            ok = _json(schema, spec.responses.get(spec.status, "OK"))
        else:
            ok = {
                "description": spec.responses.get(spec.status, "OK"),
                "content": {spec.media_type: {"schema": {"type": "string"}}},
            }
        responses = {str(spec.status): ok}
        for code, text in spec.responses.items():
            if 200 <= code < 300 and code != spec.status:
                responses[str(code)] = {**ok, "description": text}
        responses |= _errors(spec, pol, settings, body is not None)
        op["responses"] = responses
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.center_name} API",
            "version": "1",
            "description": "The command center's HTTP API. Generated from the handlers' "
            "declared contracts; docs/api.md has the prose.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An integration API key ck_… (python run.py create-key).",
                },
                "deviceToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A wall screen's device token dt_… "
                    "(python run.py create-key --kind device_token, or wall pairing).",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The csrf_token of GET /api/v1/me; required with a session "
                    "on POST, PUT, PATCH and DELETE.",
                },
            },
        },
    }


class _Cached:
    """The encoded document, built on first request (routes and settings are fixed by then)."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        self.body: bytes | None = None


_DOC = web.AppKey("openapi_document", _Cached)


@public
@contract("This document", response=dict[str, Any])
async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: public, like any API description; built once per app
    (the routes and settings do not change while it runs)."""
    cached = request.app[_DOC]
    if cached.body is None:
        cached.body = msgspec.json.encode(build(request.app))
    return web.Response(body=cached.body, content_type="application/json")


def add_routes(app: web.Application) -> None:
    app[_DOC] = _Cached()
    app.router.add_get("/api/v1/openapi.json", openapi_json)
