"""WebRTC signaling over ``/ws``: ``rtc.join``, ``rtc.rejoin``, ``rtc.offer``, ``rtc.answer``,
``rtc.stats``, ``rtc.leave``.

``rtc.join {room, role?}`` joins the room and makes its id a subscription: room events
(``offer``, ``tracks``, ``state``, ``bye``, ``participant_joined``/``participant_left``) come
as ``{"id": <join id>, "type": "event", "event": {"type", "seq", "data"}}``. The result goes
out before the first event. The participant leaves when the subscription ends — ``rtc.leave``,
``unsubscribe`` of the join id, or the websocket closing — and the subscription ends when the
server says ``bye`` (peer failed, room ended, shutdown). A websocket that closes without a
leave *drops* its participant: in a call the slot is held for the grace period, and
``rtc.rejoin {room, participant, token}`` (the ``rejoin_token`` of the join result) takes it
back on a fresh peer connection. A page that sees its peer connection die first (the
browser notices within seconds) sends ``rtc.rejoin`` for its still-present participant on
the same socket: the old join subscription ends quietly and the rejoin counts as the drop.
``rtc.stats {room, samples}`` carries the page's own ``getStats()`` figures into the room's
quality timeline (source ``browser``).

A room another instance owns (with Redis) gets a :class:`RelaySession`: the commands go to
the owner over the bus (media/cluster.py) and its events come back; ``bye`` ``owner_lost``
when the owner dies.

The server side is not trickle: answers and offers carry every candidate, and the client's
SDP must carry its own (wait for ICE gathering to complete). Protocol: docs/websocket.md.
"""

from __future__ import annotations

import contextlib
import hmac
from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web

from center.authz import Action, role_allowed
from center.errors import CenterError, Conflict, Forbidden
from media.cluster import RoomCluster
from media.component import MediaService, RoomRecord, principal_key
from media.errors import MediaError, ParticipantNotFoundError, RoomNotFoundError
from media.manager import JoinResult
from media.owner import record_stats
from media.policy import Role
from web.api_rooms import visible_room
from web.components import media_of
from web.ws.connection import Connection, ConnectionState
from web.ws.hub import register_command
from web.ws.messages import event_body
from web.ws.registry import NO_REPLY, command

SDP_MAX: Final = 60_000
"""Characters in one SDP (offer or answer) the server accepts."""


class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
    room: str


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    room: str
    role: Role = Role.PARTY


class RejoinIn(msgspec.Struct, forbid_unknown_fields=True):
    room: str
    participant: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Measure = Annotated[float, msgspec.Meta(ge=0.0, le=1e7)]


class BrowserSample(msgspec.Struct, forbid_unknown_fields=True):
    """One direction of the page's leg over the last interval, from its ``getStats()``:
    ``downlink`` from its inbound-rtp, ``uplink`` from the server's remote-inbound reports."""

    direction: Literal["uplink", "downlink"]
    loss: Fraction | None = None
    jitter_ms: Measure | None = None
    rtt_ms: Measure | None = None
    bitrate_kbps: Measure | None = None
    fps: Measure | None = None


class StatsIn(msgspec.Struct, forbid_unknown_fields=True):
    room: str
    samples: Annotated[list[BrowserSample], msgspec.Meta(max_length=4)]


class SdpIn(msgspec.Struct, forbid_unknown_fields=True):
    room: str
    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=SDP_MAX)]


class RtcSession:
    """One connection in one room: forwards room events on the join id, leaves on unsubscribe."""

    def __init__(self, conn: Connection, service: MediaService, join_id: int, room: str) -> None:
        self.conn = conn
        self.service = service
        self.join_id = join_id
        self.room = room
        self.participant_id = ""
        self.ended = False
        self._seq = 0
        self._held: list[dict[str, Any]] | None = []

    def __repr__(self) -> str:
        return f"RtcSession({self.conn.id}, {self.room}, {self.participant_id or '-'})"

    @property
    def key(self) -> tuple[str, str]:
        return (self.conn.id, self.room)

    def on_event(self, event: dict[str, Any]) -> None:
        """The manager's callback (synchronous): send, or hold until the join result is out."""
        if self.ended:
            return
        if self._held is not None:
            self._held.append(event)
        else:
            self._send(event)
        if event.get("type") == "bye":
            self.end()
            self.conn.remove_subscription(self.join_id)

    def _send(self, event: dict[str, Any]) -> None:
        self._seq += 1
        data = {k: v for k, v in event.items() if k != "type"}
        self.conn.send(
            {
                "id": self.join_id,
                "type": "event",
                "event": event_body(event["type"], self._seq, data),
            }
        )

    def release(self) -> None:
        """The join result has been sent: deliver what arrived before it."""
        held, self._held = self._held or [], None
        for event in held:
            self._send(event)

    def end(self) -> None:
        """No more events; forget the session (idempotent)."""
        self.ended = True
        if self.service.sessions.get(self.key) is self:
            del self.service.sessions[self.key]

    def unsubscribe(self) -> None:
        """The subscription ended (unsubscribe, websocket closed): leave the room."""
        if self.ended:
            return
        self.end()
        if self.participant_id:
            # A socket that closed under us is a drop (held for a rejoin in a call); an
            # unsubscribe on a live socket is a leave.
            dropped = self.conn.state is not ConnectionState.ACTIVE
            self.leave_soon(dropped=dropped)

    # What the commands do, here (the room is on this instance) or on its owner --------

    def leave_soon(self, *, dropped: bool) -> None:
        self.service.leave_soon(self.participant_id, dropped=dropped)

    async def offer(self, sdp: str) -> str:
        return await self.service.manager.offer(self.participant_id, sdp)

    async def answer(self, sdp: str) -> None:
        await self.service.manager.answer(self.participant_id, sdp)

    async def stats(self, samples: list[dict[str, Any]]) -> None:
        record_stats(self.service, self.participant_id, samples)

    async def leave(self) -> None:
        with contextlib.suppress(MediaError):
            await self.service.manager.leave(self.participant_id)


class RelaySession(RtcSession):
    """A session in a room another instance owns: its commands go to the owner over the
    bus and the owner's events come back through :class:`~media.cluster.RoomCluster`."""

    def __init__(
        self, conn: Connection, service: MediaService, join_id: int, room: str, owner: str
    ) -> None:
        super().__init__(conn, service, join_id, room)
        self.owner = owner
        self.cluster = cluster_required(service)
        self.sid = self.cluster.open_relay(owner, room, self.on_event)

    def end(self) -> None:
        super().end()
        self.cluster.close_relay(self.sid)

    def _args(self, **more: Any) -> dict[str, Any]:
        return {"participant": self.participant_id, **more}

    def leave_soon(self, *, dropped: bool) -> None:
        self.cluster.tell_soon(self.owner, "drop" if dropped else "leave", self._args())

    async def offer(self, sdp: str) -> str:
        return str(await self.cluster.request(self.owner, "offer", self._args(sdp=sdp)))

    async def answer(self, sdp: str) -> None:
        await self.cluster.request(self.owner, "answer", self._args(sdp=sdp))

    async def stats(self, samples: list[dict[str, Any]]) -> None:
        await self.cluster.request(self.owner, "stats", self._args(samples=samples))

    async def leave(self) -> None:
        with contextlib.suppress(MediaError):
            await self.cluster.request(self.owner, "leave", self._args())


def cluster_required(service: MediaService) -> RoomCluster:
    assert service.cluster is not None
    return service.cluster  # type: ignore[no-any-return]


def _session(conn: Connection, room: str) -> RtcSession:
    session = media_of(conn.app).sessions.get((conn.id, room))
    if session is None or not session.participant_id:
        raise ParticipantNotFoundError(f"not in room {room}: send rtc.join first")
    return session  # type: ignore[no-any-return]


@command("rtc.join", JoinIn, action=Action.ROOMS_JOIN, concurrent=True)
async def rtc_join(conn: Connection, msg_id: int, body: JoinIn) -> Any:
    """Join as ``party`` (default) or ``monitor``; the room's invitations decide."""
    principal = conn.principal_required
    if body.role is Role.MONITOR and not role_allowed(principal, Action.ROOMS_MONITOR):
        raise Forbidden(
            f"role {principal.role} may not monitor", details={"action": "rooms.monitor"}
        )
    manager = media_of(conn.app).manager
    key = principal_key(principal)
    return await _attach(
        conn,
        msg_id,
        body.room,
        lambda on_event: manager.join(body.room, body.role, key, on_event),
        ("join", {"room": body.room, "role": str(body.role), "principal": key}),
    )


@command("rtc.rejoin", RejoinIn, action=Action.ROOMS_JOIN, concurrent=True)
async def rtc_rejoin(conn: Connection, msg_id: int, body: RejoinIn) -> Any:
    """Take a dropped participant's slot back (same id, same recording) within the grace
    period: ``not_allowed`` with a wrong token or principal, ``rejoin_expired`` after it."""
    service = media_of(conn.app)
    manager = service.manager
    key = principal_key(conn.principal_required)
    old = service.sessions.get((conn.id, body.room))
    if (
        old is not None
        and old.participant_id == body.participant
        and (
            isinstance(old, RelaySession)
            or _holds_token(service, body.room, body.participant, body.token)
        )
    ):
        # This page's own participant, whose connection the page saw die: end the old
        # subscription without a leave; the room treats the rejoin as the drop. (On a
        # relayed room the owner checks the token.)
        old.end()
        conn.remove_subscription(old.join_id)
    try:
        return await _attach(
            conn,
            msg_id,
            body.room,
            lambda on_event: manager.rejoin(
                body.room, body.participant, body.token, on_event, principal=key
            ),
            (
                "rejoin",
                {
                    "room": body.room,
                    "participant": body.participant,
                    "token": body.token,
                    "principal": key,
                },
            ),
        )
    except CenterError:
        if old is not None and old.ended and old.participant_id == body.participant:
            # Its page gave that connection up: without a subscription it is a drop.
            old.leave_soon(dropped=True)
        raise


def _holds_token(service: MediaService, room: str, participant_id: str, token: str) -> bool:
    """Whether ``token`` is the rejoin token of this present participant (a wrong one on
    the page's own socket must not end its live subscription)."""
    with contextlib.suppress(MediaError):
        live = service.manager.room(room).participants.get(participant_id)
        return live is not None and hmac.compare_digest(live.rejoin_token, token)
    return False


async def _open(conn: Connection, msg_id: int, room: str) -> tuple[RoomRecord, RtcSession]:
    """The room's record and a new session: local when the room is here, relayed when
    another instance owns it (the same visibility rule either way)."""
    service = media_of(conn.app)
    if (conn.id, room) in service.sessions:
        raise Conflict(f"this connection is already in room {room}")
    try:
        record = service.get(room)
        remote = None
    except RoomNotFoundError:
        remote = await service.cluster.lookup(room) if service.cluster is not None else None
        if remote is None:
            raise
        record = remote.record
    if not visible_room(conn.principal_required, record, Action.ROOMS_READ):
        # the answer HTTP gives: a room one may not see does not exist
        raise RoomNotFoundError(f"no room {room}")
    if (conn.id, room) in service.sessions:
        raise Conflict(f"this connection is already in room {room}")
    if remote is None:
        session = RtcSession(conn, service, msg_id, room)
    else:
        session = RelaySession(conn, service, msg_id, room, remote.owner)
    service.sessions[session.key] = session
    return record, session


async def _attach(
    conn: Connection, msg_id: int, room: str, enter: Any, forward: tuple[str, dict[str, Any]]
) -> Any:
    """Open the session for ``room``, enter it (join or rejoin, here or on the owner),
    reply, release events."""
    record, session = await _open(conn, msg_id, room)
    try:
        if isinstance(session, RelaySession):
            op, args = forward
            joined = JoinResult(
                **await session.cluster.request(session.owner, op, {**args, "sid": session.sid})
            )
        else:
            joined = await enter(session.on_event)
    except BaseException:
        session.end()
        raise
    session.participant_id = joined.participant_id
    if conn.state is not ConnectionState.ACTIVE:
        # The socket closed while we joined: its subscriptions are already gone.
        session.unsubscribe()
        return NO_REPLY
    if not session.ended:
        conn.add_subscription(msg_id, session.unsubscribe)
    conn.send_result(
        msg_id,
        {
            "participant": joined.participant_id,
            "ice_servers": joined.ice_servers,
            "room": room,
            "kind": str(record.kind),
            "role": joined.role,
            "rejoin_token": joined.rejoin_token,
        },
    )
    session.release()
    return NO_REPLY


@command("rtc.offer", SdpIn, action=Action.ROOMS_JOIN, concurrent=True)
async def rtc_offer(conn: Connection, msg_id: int, body: SdpIn) -> Any:
    """The client's offer (with its candidates) in, the server's full answer out."""
    session = _session(conn, body.room)
    return {"sdp": await session.offer(body.sdp), "type": "answer"}


@command("rtc.answer", SdpIn, action=Action.ROOMS_JOIN, concurrent=True)
async def rtc_answer(conn: Connection, msg_id: int, body: SdpIn) -> Any:
    """The client's answer to an ``offer`` event."""
    await _session(conn, body.room).answer(body.sdp)
    return None


@command("rtc.stats", StatsIn, action=Action.ROOMS_JOIN, concurrent=True)
async def rtc_stats(conn: Connection, msg_id: int, body: StatsIn) -> Any:
    """The page's ``getStats()`` samples into the room's quality timeline."""
    await _session(conn, body.room).stats(msgspec.to_builtins(body.samples))
    return None


@command("rtc.leave", RoomIn, action=Action.ROOMS_JOIN, concurrent=True)
async def rtc_leave(conn: Connection, msg_id: int, body: RoomIn) -> Any:
    """Leave now; no events follow the result."""
    session = _session(conn, body.room)
    session.end()
    conn.remove_subscription(session.join_id)
    await session.leave()
    return None


COMMANDS = (rtc_join, rtc_rejoin, rtc_offer, rtc_answer, rtc_stats, rtc_leave)


def register(app: web.Application) -> None:
    for handler in COMMANDS:
        register_command(app, handler)
