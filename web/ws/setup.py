"""Wiring ``/ws`` into the app: the hub, the built-in commands, the route, the live context.

Apart from :mod:`web.ws.hub` because it reaches the layers above the hub (the built-in
commands and the HTTP handler both use the hub): the hub itself stays below them.
"""

from __future__ import annotations

from aiohttp import web

from web.ws.commands import BUILTIN
from web.ws.http import websocket_handler
from web.ws.hub import HUB, Hub, live_ctx


def setup_ws(app: web.Application) -> None:
    """Create the hub, register the built-in commands, add ``/ws`` and the live context."""
    hub = Hub(app)
    app[HUB] = hub
    for handler in BUILTIN:
        hub.commands.register(handler)
    app.router.add_get("/ws", websocket_handler)
    app.cleanup_ctx.append(live_ctx)
