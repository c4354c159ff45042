"""The built-in commands: ``subscribe``, ``unsubscribe``, ``ping`` (``auth`` is the
handshake in :mod:`web.ws.http`)."""

from __future__ import annotations

import time
from typing import Any

from center.authz import authorize
from center.errors import NOT_SUBSCRIBED, BadRequest, CenterError, Forbidden, NotFound
from web import keys
from web.ws.connection import Connection
from web.ws.hub import hub_of
from web.ws.registry import NO_REPLY, command
from web.ws.schema import Field, positive_int, since_check
from web.ws.topics import SubscribeRequest


@command(
    "subscribe",
    {
        "topic": Field(str),
        "since": Field(dict, required=False, check=since_check),
        "jurisdiction": Field(str, required=False),
    },
)
async def handle_subscribe(conn: Connection, msg: dict[str, Any]) -> Any:
    """Subscribe to a topic in the principal's jurisdiction, or a narrower one that is
    inside it (``jurisdiction``); wider or foreign scopes are refused, not silently cut."""
    hub = hub_of(conn.app)
    name = msg["topic"]
    topic = hub.topics.find(name)
    if topic is None:
        raise NotFound(f"unknown topic {name!r}", details={"topics": hub.topics.names})
    principal = conn.principal_required
    scope = principal.jurisdiction
    if "jurisdiction" in msg:
        tree = conn.app[keys.TREE]
        if msg["jurisdiction"] not in tree:
            raise NotFound(f"unknown jurisdiction {msg['jurisdiction']!r}")
        scope = tree.path(msg["jurisdiction"])
    if not authorize(principal, topic.action, scope, grant=name):
        raise Forbidden(
            f"role {principal.role} may not subscribe to {name} in {'/'.join(scope)}",
            details={"action": topic.action, "topic": name},
        )
    since = msg.get("since")
    request = SubscribeRequest(
        msg_id=msg["id"],
        topic=name,
        since=(since["epoch"], since["seq"]) if since else None,
        scope=scope,
    )
    await topic.subscribe(conn, request)
    return NO_REPLY


@command("unsubscribe", {"subscription": Field(int, check=positive_int)})
async def handle_unsubscribe(conn: Connection, msg: dict[str, Any]) -> Any:
    if not conn.remove_subscription(msg["subscription"]):
        raise CenterError(
            f"no subscription with id {msg['subscription']}", code=NOT_SUBSCRIBED, status=404
        )
    return None


@command("ping")
async def handle_ping(conn: Connection, msg: dict[str, Any]) -> Any:
    """Answers with the server's time, which wall screens use to keep their clock honest."""
    return {"at": time.time(), "now": conn.app[keys.CLOCK].now().isoformat()}


@command("auth", {"token": Field(str, required=False)})
async def handle_auth_again(conn: Connection, msg: dict[str, Any]) -> Any:
    raise BadRequest("already authenticated; open a new connection to change identity")


BUILTIN = (handle_subscribe, handle_unsubscribe, handle_ping, handle_auth_again)
