"""Rooms API: ``POST /api/v1/rooms``, ``GET`` and ``DELETE /api/v1/rooms/{id}``.

A room is the media session behind a call (and, in later issues, a spot-check or a visit).
Its media lives on the instance that created it (``GET`` on another instance asks that
owner, see media/cluster.py) and it ends on ``DELETE`` (on the owner), when an echo room's party
leaves, or at shutdown. Media flows over the websocket's ``rtc.*`` commands (web/ws/rtc.py).

Who may do what:

* ``echo`` (device check): anyone with ``rooms.check`` — any staff user now, guests with a
  code later; only the creator may join it; never recorded.
* ``call``: staff with ``rooms.create``. The creator may join as a party (and as a monitor
  if its role may monitor); ``participants`` (usernames or ``user:<id>``) are invited as
  parties, ``monitors`` as silent monitors. Invitees must sit on the creator's line of
  jurisdiction (above or below it): a street office cannot pull in another district.
* ``GET``/``DELETE``: the creator, an invitee (``GET`` only), or staff whose jurisdiction
  holds the room's (``rooms.read``/``rooms.end``). Rooms outside that scope answer 404, as
  unknown ones do, so ids cannot be probed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

import msgspec
from aiohttp import web
from sqlalchemy import or_, select

from center.authz import Action, Principal, PrincipalKind, authorize, role_allowed, within
from center.errors import Forbidden
from center.models import Role as UserRole
from center.models import User
from media.component import (
    Invitee,
    MediaService,
    RoomRecord,
    principal_key,
)
from media.errors import RoomNotFoundError
from media.ice import IceServerDict, ice_servers_for
from media.owner import presence
from media.policy import RoomKind
from media.quality import Grade, degraded_spans
from web import keys
from web.components import media_of
from web.contract import contract, validation_error
from web.fields import PG_INT_MAX, PLAIN, Text, column_length
from web.policy import GUEST, SESSION, policy, principal_of

_MAX_INVITEES: Final = 16
_USER_PREFIX: Final = "user:"

# A username, or ``user:<id>``.
InviteeName = Annotated[
    str,
    PLAIN,
    msgspec.Meta(min_length=1, max_length=len(_USER_PREFIX) + column_length(User.username)),
]
Invitees = Annotated[list[InviteeName], msgspec.Meta(max_length=_MAX_INVITEES)]


class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: RoomKind
    participants: Invitees = []
    monitors: Invitees = []
    record: bool | None = None  # None: the ``record_calls`` setting
    # Most video bitrate (kbit/s) asked of each publisher; None: the media_max_video_kbps
    # setting, 0: no room cap (the weakest viewer's estimate still applies).
    max_video_kbps: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None


class RoomPath(msgspec.Struct):
    room_id: Text


class InviteeOut(msgspec.Struct):
    principal: str
    name: str


class PresentOut(msgspec.Struct):
    participant: str
    role: str
    principal: str
    state: str


class RoomOut(msgspec.Struct):
    id: str
    kind: RoomKind
    state: str
    record: bool
    jurisdiction: str | None
    created_by: str
    created_at: datetime
    participants: list[InviteeOut]
    monitors: list[InviteeOut]
    present: list[PresentOut]
    ice_servers: list[IceServerDict]


class RecordingOut(msgspec.Struct):
    id: str
    participant: str | None
    state: str
    size_bytes: int | None
    duration_s: float | None
    sha256: str | None


class QualitySampleOut(msgspec.Struct):
    at: datetime
    participant: str
    role: str
    direction: str  # uplink: participant -> server; downlink: server -> participant
    state: str
    grade: Grade
    loss: float | None
    jitter_ms: float | None
    rtt_ms: float | None
    bitrate_kbps: float | None
    fps: float | None
    # server: the server's RTP/RTCP; browser: the participant's getStats() (rtc.stats)
    source: str = "server"


class DegradedOut(msgspec.Struct):
    participant: str
    role: str
    direction: str
    worst: Grade
    start: datetime
    end: datetime
    source: str = "server"


class QualityOut(msgspec.Struct):
    room: str
    ended: bool
    samples: list[QualitySampleOut]
    degraded: list[DegradedOut]


class RoomEnded(msgspec.Struct):
    id: str
    ended: bool
    recordings: list[RecordingOut]


def _user_id(name: str) -> int | None:
    raw = name.removeprefix(_USER_PREFIX)
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= PG_INT_MAX else None


async def _resolve(
    request: web.Request, creator: Principal, field: str, names: list[str], action: Action
) -> list[Invitee]:
    """Usernames / ``user:<id>`` to invitees; refuses unknown, inactive, foreign users (422,
    ``details.fields`` keyed by the list position, each message naming the user)."""
    names = list(dict.fromkeys(names))
    if not names:
        return []
    ids = {i for i in map(_user_id, names) if i is not None}
    async with request.app[keys.SESSIONMAKER]() as session:
        users = list(
            await session.scalars(
                select(User).where(or_(User.username.in_(names), User.id.in_(ids)))
            )
        )
    by_name = {u.username: u for u in users}
    by_id = {u.id: u for u in users}
    tree = request.app[keys.TREE]
    found: list[Invitee] = []
    problems: dict[str, str] = {}
    for i, name in enumerate(names):
        uid = _user_id(name)
        user = by_name.get(name) or (by_id.get(uid) if uid is not None else None)
        where = f"{field}[{i}]"
        path = tree.path(user.jurisdiction_id) if user is not None else ()
        if (
            user is None
            or not user.active
            or not (within(creator.jurisdiction, path) or within(path, creator.jurisdiction))
        ):
            # one answer for unknown, disabled and foreign users: an invitation is no way to
            # learn who has an account elsewhere
            problems[where] = f"{name}: no such user in your line of jurisdiction"
            continue
        invitee = Principal(
            kind=PrincipalKind.USER,
            id=str(user.id),
            name=user.username,
            role=UserRole(user.role),
            jurisdiction=path,
        )
        if not role_allowed(invitee, action):
            problems[where] = f"{name}: role {user.role} may not {action.split('.')[1]} a call"
        else:
            found.append(Invitee(principal_key(invitee), user.username))
    if problems:
        raise validation_error(problems, "invitees")
    return found


def visible_room(principal: Principal, rec: RoomRecord, action: Action) -> bool:
    """The creator, an invitee (reading only), or staff whose jurisdiction holds the room;
    anyone else is told the room does not exist (404, as for an unknown id)."""
    key = principal_key(principal)
    if key == rec.created_by:
        return True
    if action is Action.ROOMS_READ and any(
        i.principal == key for i in (*rec.parties, *rec.monitors)
    ):
        return True
    return authorize(principal, action, rec.jurisdiction)


def _record_of(
    service: MediaService, principal: Principal, room_id: str, action: Action
) -> RoomRecord:
    rec = service.get(room_id)  # RoomNotFoundError (a CenterError) for an unknown id
    if not visible_room(principal, rec, action):  # the same answer as a room that does not exist
        raise RoomNotFoundError(f"no room {room_id}")
    return rec


def present_of(service: MediaService, room_id: str) -> tuple[str, list[PresentOut]]:
    """The room's state and who is in it (the owner answers this for other instances)."""
    state, present = presence(service, room_id)
    return state, [msgspec.convert(p, PresentOut) for p in present]


def _view(request: web.Request, service: MediaService, rec: RoomRecord) -> RoomOut:
    return _out(request, service, rec, *present_of(service, rec.id))


def _out(
    request: web.Request,
    service: MediaService,
    rec: RoomRecord,
    state: str,
    present: list[PresentOut],
) -> RoomOut:
    principal = principal_of(request)
    return RoomOut(
        id=rec.id,
        kind=rec.kind,
        state=state,
        record=rec.record,
        jurisdiction=rec.jurisdiction[-1] if rec.jurisdiction else None,
        created_by=rec.created_by_actor,
        created_at=rec.created_at,
        participants=[InviteeOut(i.principal, i.name) for i in rec.parties],
        monitors=[InviteeOut(i.principal, i.name) for i in rec.monitors],
        present=present,
        ice_servers=ice_servers_for(
            service.manager.settings, principal_key(principal), request.app[keys.CLOCK].now()
        ),
    )


@policy(Action.ROOMS_CHECK, auth=(SESSION, GUEST))
@contract(
    "Open a room",
    body=RoomIn,
    response=RoomOut,
    status=201,
    errors=(422, 503),
    description="`echo`: a device check of one's own (never recorded, no invitees). `call`: "
    f"staff with `rooms.create`; up to {_MAX_INVITEES} `participants` and `monitors` "
    "(usernames or `user:<id>`) on the creator's line of jurisdiction. A relative's guest "
    "session (`Bearer vg_…`) may open an echo room: the network check before a visit.",
)
async def create_room(request: web.Request, *, body: RoomIn) -> RoomOut:
    principal = principal_of(request)
    if body.kind is RoomKind.ECHO and (body.participants or body.monitors or body.record):
        raise validation_error({"kind": "an echo room has only its creator and is never recorded"})
    if body.kind is RoomKind.CALL:
        if not authorize(principal, Action.ROOMS_CREATE, principal.jurisdiction):
            raise Forbidden(
                f"role {principal.role} may not open calls",
                details={"action": Action.ROOMS_CREATE},
            )
    elif not authorize(principal, Action.ROOMS_CHECK, None, grant=Action.ROOMS_CHECK):
        raise Forbidden("no device check for this login", details={"action": Action.ROOMS_CHECK})
    parties = await _resolve(
        request, principal, "participants", body.participants, Action.ROOMS_JOIN
    )
    monitors = await _resolve(request, principal, "monitors", body.monitors, Action.ROOMS_MONITOR)
    service = media_of(request.app)
    rec = await service.create(
        body.kind,
        principal,
        parties=parties,
        monitors=monitors,
        monitor_self=role_allowed(principal, Action.ROOMS_MONITOR),
        record=body.record,
        max_video_kbps=body.max_video_kbps,
    )
    return _view(request, service, rec)


@policy(Action.ROOMS_READ)
@contract("One room", path=RoomPath, response=RoomOut, errors=(404, 503))
async def get_room(request: web.Request, *, path: RoomPath) -> RoomOut:
    """A room here, or on the instance that owns it (its presence asked over the bus)."""
    service = media_of(request.app)
    principal = principal_of(request)
    try:
        rec = _record_of(service, principal, path.room_id, Action.ROOMS_READ)
    except RoomNotFoundError:
        remote = await service.cluster.lookup(path.room_id) if service.cluster else None
        if remote is None or not visible_room(principal, remote.record, Action.ROOMS_READ):
            raise
        seen = await service.cluster.request(remote.owner, "view", {"room": path.room_id})
        present = [PresentOut(**p) for p in seen["present"]]
        return _out(request, service, remote.record, seen["state"], present)
    return _view(request, service, rec)


@policy(Action.ROOMS_END)
@contract(
    "End a room",
    path=RoomPath,
    response=RoomEnded,
    errors=(404,),
    description="Ends the room for everyone (`bye` with `room_closed`); returns its recordings.",
)
async def delete_room(request: web.Request, *, path: RoomPath) -> RoomEnded:
    principal = principal_of(request)
    service = media_of(request.app)
    rec = _record_of(service, principal, path.room_id, Action.ROOMS_END)
    recordings = await service.end(rec.id, principal.actor)
    return RoomEnded(
        id=rec.id,
        ended=True,
        recordings=[
            RecordingOut(
                id=r.id,
                participant=r.participant_id,
                state=str(r.state),
                size_bytes=r.size_bytes,
                duration_s=r.duration_s,
                sha256=r.sha256,
            )
            for r in recordings
        ],
    )


@policy(Action.ROOMS_READ)
@contract(
    "A call's quality timeline",
    path=RoomPath,
    response=QualityOut,
    errors=(404,),
    description="Per participant and direction (`uplink`: participant to server, "
    "`downlink`: server to participant), every few seconds: loss, jitter, round-trip time, "
    "bitrate, frame rate and a grade (`excellent`/`good`/`poor`/`lost`); `degraded` lists "
    "the runs of `poor`/`lost` samples, so the side that failed is named. Open rooms and "
    "rooms ended on this instance (the most recent ones).",
)
async def get_room_quality(request: web.Request, *, path: RoomPath) -> QualityOut:
    service = media_of(request.app)
    rec, samples = service.quality(path.room_id)
    if not visible_room(principal_of(request), rec, Action.ROOMS_READ):
        raise RoomNotFoundError(f"no room {path.room_id}")
    return QualityOut(
        room=rec.id,
        ended=rec.id in service.ended,
        samples=[
            QualitySampleOut(
                at=q.at,
                participant=q.participant_id,
                role=q.role,
                direction=q.direction,
                state=q.state,
                grade=q.grade,
                loss=q.loss,
                jitter_ms=q.jitter_ms,
                rtt_ms=q.rtt_ms,
                bitrate_kbps=q.bitrate_kbps,
                fps=q.fps,
                source=q.source,
            )
            for q in samples
        ],
        degraded=[
            DegradedOut(d.participant_id, d.role, d.direction, d.worst, d.start, d.end, d.source)
            for d in degraded_spans(samples)
        ],
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/rooms", create_room)
    app.router.add_get("/api/v1/rooms/{room_id}", get_room)
    app.router.add_get("/api/v1/rooms/{room_id}/quality", get_room_quality)
    app.router.add_delete("/api/v1/rooms/{room_id}", delete_room)
