"""The hub: one per app. It owns the command and topic registries, the open connections and
the dispatcher that checks every message's envelope and fields once.

Lifecycle: :func:`setup_ws` (called from ``create_app``) creates the hub and registers the
built-in commands, so other packages can register theirs from their own setup;
:func:`live_ctx` (a cleanup context after the live dashboard's, which the composition root
builds in :func:`web.components.dashboard_ctx`) registers the built-in topics over it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from center.authz import Action, role_allowed
from center.dashboard.projection import DashboardProjection
from center.errors import ID_REUSE, INVALID_FORMAT, UNKNOWN_COMMAND, Forbidden, error_of
from web import keys
from web.ws.registry import NO_REPLY, CommandRegistry, CommandSpec, TopicRegistry

if TYPE_CHECKING:
    from web.ws.connection import Connection

_LOGGER = logging.getLogger(__name__)


class Hub:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.commands = CommandRegistry()
        self.topics = TopicRegistry()
        self.connections: set[Connection] = set()
        self.dropped = 0
        # present from the start, so a dashboard or alert rule sees 0 rather than no series
        app[keys.METRICS].inc(
            "center_websocket_dropped_total",
            "Websocket clients dropped for a full send queue.",
            0,
        )

    def __repr__(self) -> str:
        return f"<Hub connections={len(self.connections)} topics={self.topics.names}>"

    @property
    def projection(self) -> DashboardProjection:
        """The live dashboard the composition root built (``app[keys.DASHBOARD]``)."""
        projection = self.app.get(keys.DASHBOARD)
        if projection is None:
            raise RuntimeError("the live projection is not running (app not started)")
        return projection

    def count_drop(self, conn: Connection) -> None:
        self.dropped += 1
        self.app[keys.METRICS].inc(
            "center_websocket_dropped_total", "Websocket clients dropped for a full send queue."
        )

    # -- dispatch -----------------------------------------------------------------------

    def envelope(self, conn: Connection, text: str) -> dict[str, Any] | None:
        """The parsed message if its envelope is valid; otherwise reply with the error."""
        try:
            msg = json.loads(text)
        except ValueError as exc:
            conn.send_error(None, INVALID_FORMAT, f"the message is not valid JSON: {exc}")
            return None
        except RecursionError:
            conn.send_error(None, INVALID_FORMAT, "the message is nested too deeply")
            return None
        if not isinstance(msg, dict):
            conn.send_error(None, INVALID_FORMAT, "a message must be a JSON object")
            return None
        msg_id = msg.get("id")
        if not isinstance(msg_id, int) or isinstance(msg_id, bool) or msg_id < 1:
            conn.send_error(None, INVALID_FORMAT, "the message needs an integer id >= 1")
            return None
        if not isinstance(msg.get("type"), str):
            conn.send_error(msg_id, INVALID_FORMAT, "the message needs a string type")
            return None
        if msg_id <= conn.last_id:
            conn.send_error(
                msg_id, ID_REUSE, f"message ids must increase; the last one was {conn.last_id}"
            )
            return None
        conn.last_id = msg_id
        return msg

    async def dispatch(self, conn: Connection, text: str) -> None:
        msg = self.envelope(conn, text)
        if msg is None:
            return
        spec = self.commands.get(msg["type"])
        if spec is None:
            conn.send_error(
                msg["id"],
                UNKNOWN_COMMAND,
                f"unknown command {msg['type']!r}",
                {"commands": self.commands.types},
            )
            return
        if spec.concurrent:
            conn.spawn(self._run(conn, spec, msg), spec.type)
        else:
            await self._run(conn, spec, msg)

    async def _run(self, conn: Connection, spec: CommandSpec, msg: dict[str, Any]) -> None:
        try:
            body = spec.parse(msg)
            if spec.action is not None and not role_allowed(conn.principal, spec.action):
                raise Forbidden(
                    f"role {conn.principal_required.role} may not use {spec.type}",
                    details={"action": spec.action},
                )
            result = await spec.handler(conn, msg["id"], body)
        except Exception as exc:
            conn.send_failure(msg["id"], error_of(exc, conn.logger, spec.type))
            return
        if result is not NO_REPLY:
            conn.send_result(msg["id"], result)


HUB = web.AppKey("ws_hub", Hub)


def hub_of(app: web.Application) -> Hub:
    return app[HUB]


def register_command(app: web.Application, handler: Any) -> None:
    """Register a handler declared with :func:`web.ws.registry.command`."""
    app[HUB].commands.register(handler)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """Register the built-in topics over the live dashboard; close them at shutdown."""
    from web.ws.alarms_topic import AlarmsTopic
    from web.ws.bus_topic import BusTopic
    from web.ws.dashboard_topic import DashboardTopic

    hub = app[HUB]
    settings = app[keys.SETTINGS]
    bus = app[keys.BUS]
    projection = app[keys.DASHBOARD]
    topics = [
        DashboardTopic(projection),
        AlarmsTopic(bus, projection, app[keys.TREE], settings.ws_snapshot_alarms),
        BusTopic("duty", Action.ALARMS_READ, bus),
    ]
    visits = app.get(keys.VISITS)
    if visits is not None:
        from web.ws.visits_topic import VisitsTopic

        topics.append(VisitsTopic(bus, visits))
    spotchecks = app.get(keys.SPOTCHECKS)
    if spotchecks is not None:
        from web.ws.spotchecks_topic import SpotchecksTopic

        topics.append(SpotchecksTopic(bus, app[keys.TREE], spotchecks))
    for topic in topics:
        hub.topics.register(topic)
        await topic.start()
    try:
        yield
    finally:
        for topic in hub.topics.all():
            try:
                await topic.close()
            except Exception:
                _LOGGER.exception("closing topic %r failed", topic)
