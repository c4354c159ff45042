"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from web import keys
from web.jsonio import json_response
from web.policy import public

_LOGGER = logging.getLogger(__name__)


@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up and its loop answers."""
    return json_response({"status": "ok"})


async def _db_ok(app: web.Application) -> bool:
    try:
        async with app[keys.ENGINE].connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 3)
        return True
    except Exception as exc:  # any failure means "not ready"; say why in the log
        _LOGGER.warning("readiness: database check failed: %s", exc)
        return False


@public
async def readyz(request: web.Request) -> web.Response:
    """503 unless both the database and the bus answer."""
    db = await _db_ok(request.app)
    try:
        bus = await asyncio.wait_for(request.app[keys.BUS].ping(), 3)
    except Exception as exc:
        _LOGGER.warning("readiness: bus check failed: %s", exc)
        bus = False
    ok = db and bus
    return json_response(
        {"status": "ok" if ok else "unavailable", "database": db, "bus": bus},
        status=200 if ok else 503,
    )


@public
async def metrics(request: web.Request) -> web.Response:
    app = request.app
    m = app[keys.METRICS]
    m.set(
        "center_websocket_clients", "Open websocket connections.", float(len(app[keys.WEBSOCKETS]))
    )
    m.set(
        "center_background_tasks", "Running background tasks.", float(len(app[keys.TASKS].running))
    )
    return web.Response(
        text=m.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
