"""The built-in commands: ``subscribe``, ``unsubscribe``, ``ping`` (``auth`` is the
handshake in :mod:`web.ws.http`; :class:`AuthIn` is its model)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec

from center.authz import authorize
from center.errors import (
    AlreadySubscribed,
    BadRequest,
    Forbidden,
    NotFound,
    NotSubscribed,
    TooManySubscriptions,
)
from web import keys
from web.ws.connection import Connection
from web.ws.hub import hub_of
from web.ws.registry import NO_REPLY, NoFields, command
from web.ws.topics import SubscribeRequest


class Since(msgspec.Struct, forbid_unknown_fields=True):
    """Where a resumed subscription picks up: the stream's epoch and the last seq seen."""

    epoch: str
    seq: Annotated[int, msgspec.Meta(ge=0)]


class SubscribeIn(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    since: Since | None = None
    jurisdiction: str | None = None
    """A narrower scope inside the principal's (a jurisdiction id)."""


class UnsubscribeIn(msgspec.Struct, forbid_unknown_fields=True):
    subscription: Annotated[int, msgspec.Meta(ge=0)]


class AuthIn(msgspec.Struct, forbid_unknown_fields=True):
    """``auth``: a device token, API key or session token; none to use the cookie."""

    token: str | None = None


@command("subscribe", SubscribeIn)
async def handle_subscribe(conn: Connection, msg_id: int, body: SubscribeIn) -> Any:
    """Subscribe to a topic in the principal's jurisdiction, or a narrower one that is
    inside it (``jurisdiction``); wider or foreign scopes are refused, not silently cut."""
    hub = hub_of(conn.app)
    name = body.topic
    topic = hub.topics.find(name)
    if topic is None:
        raise NotFound(f"unknown topic {name!r}", details={"topics": hub.topics.names})
    principal = conn.principal_required
    scope = principal.jurisdiction
    if body.jurisdiction is not None:
        tree = conn.app[keys.TREE]
        if body.jurisdiction not in tree:
            raise NotFound(f"unknown jurisdiction {body.jurisdiction!r}")
        scope = tree.path(body.jurisdiction)
    if not authorize(principal, topic.action, scope, grant=name):
        raise Forbidden(
            f"role {principal.role} may not subscribe to {name} in {'/'.join(scope)}",
            details={"action": topic.action, "topic": name},
        )
    key = (name, scope)
    if conn.subscribed(key):
        raise AlreadySubscribed(
            f"already subscribed to {name} in {'/'.join(scope)}", details={"topic": name}
        )
    limit = conn.app[keys.SETTINGS].ws_max_subscriptions
    if conn.subscription_count >= limit:
        raise TooManySubscriptions(
            f"at most {limit} subscriptions per connection", details={"max": limit}
        )
    since = body.since
    request = SubscribeRequest(
        msg_id=msg_id,
        topic=name,
        since=(since.epoch, since.seq) if since else None,
        scope=scope,
    )
    await topic.subscribe(conn, request)
    conn.tag_subscription(msg_id, key)
    return NO_REPLY


@command("unsubscribe", UnsubscribeIn)
async def handle_unsubscribe(conn: Connection, msg_id: int, body: UnsubscribeIn) -> Any:
    if not conn.remove_subscription(body.subscription):
        raise NotSubscribed(f"no subscription with id {body.subscription}")
    return None


@command("ping", NoFields)
async def handle_ping(conn: Connection, msg_id: int, body: NoFields) -> Any:
    """Answers with the server's time, which wall screens use to keep their clock honest."""
    return {"at": time.time(), "now": conn.app[keys.CLOCK].now().isoformat()}


@command("auth", AuthIn)
async def handle_auth_again(conn: Connection, msg_id: int, body: AuthIn) -> Any:
    raise BadRequest("already authenticated; open a new connection to change identity")


BUILTIN = (handle_subscribe, handle_unsubscribe, handle_ping, handle_auth_again)
