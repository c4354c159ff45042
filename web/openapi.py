"""The OpenAPI 3.1 document (placeholder, filled in below)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.jsonio import json_response
from web.policy import public


def document() -> dict[str, Any]:
    from web.openapi_workflow import workflow_paths  # duty workflow hook (issue 6)

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "command center", "version": "1"},
        "paths": {},
    }
    doc["paths"].update(workflow_paths())
    return doc


@public
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
