"""Rooms API: ``POST /api/v1/rooms``, ``GET`` and ``DELETE /api/v1/rooms/{id}``.

A room is the media session behind a call (and, in later issues, a spot-check or a visit).
It lives on the instance that created it and ends on ``DELETE``, when an echo room's party
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

from typing import Any, Final

from aiohttp import web
from sqlalchemy import or_, select

from center.authz import Principal, PrincipalKind, authorize, role_allowed, within
from center.errors import Forbidden, NotFound, ValidationFailed
from center.models import Role as UserRole
from center.models import User
from media.component import (
    Invitee,
    MediaService,
    RoomRecord,
    center_error,
    principal_key,
)
from media.errors import MediaError
from media.ice import ice_servers_for
from media.policy import RoomKind
from web import keys
from web.components import media_of
from web.jsonio import json_response, read_object
from web.policy import policy, principal_of

_MAX_INVITEES: Final = 16
_FIELDS: Final = frozenset({"kind", "participants", "monitors", "record"})


def _names(body: dict[str, Any], key: str, problems: dict[str, str]) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems[key] = "must be a list of usernames or user ids"
        return []
    if len(value) > _MAX_INVITEES:
        problems[key] = f"at most {_MAX_INVITEES}"
    return list(dict.fromkeys(value))


async def _resolve(
    request: web.Request, creator: Principal, names: list[str], action: str
) -> list[Invitee]:
    """Usernames / ``user:<id>`` to invitees; refuses unknown, inactive, foreign users."""
    if not names:
        return []
    ids = {int(n.split(":", 1)[-1]) for n in names if n.split(":", 1)[-1].isdigit()}
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = (
            await session.execute(
                select(User).where(or_(User.username.in_(names), User.id.in_(ids)))
            )
        ).scalars()
        users = list(rows)
    by_name = {u.username: u for u in users}
    by_id = {str(u.id): u for u in users}
    tree = request.app[keys.TREE]
    found: list[Invitee] = []
    problems: dict[str, str] = {}
    for name in names:
        user = by_name.get(name) or by_id.get(name.split(":", 1)[-1])
        if user is None or not user.active:
            problems[name] = "no such active user"
            continue
        path = tree.path(user.jurisdiction_id)
        invitee = Principal(
            kind=PrincipalKind.USER,
            id=str(user.id),
            name=user.username,
            role=UserRole(user.role),
            jurisdiction=path,
        )
        if not role_allowed(invitee, action):
            problems[name] = f"role {user.role} may not {action.split('.')[1]} a call"
        elif not (within(creator.jurisdiction, path) or within(path, creator.jurisdiction)):
            problems[name] = "outside your line of jurisdiction"
        else:
            found.append(Invitee(principal_key(invitee), user.username))
    if problems:
        raise ValidationFailed("some invitees cannot join this call", details=problems)
    return found


def _visible(principal: Principal, rec: RoomRecord, action: str) -> bool:
    key = principal_key(principal)
    if key == rec.created_by:
        return True
    if action == "rooms.read" and any(i.principal == key for i in (*rec.parties, *rec.monitors)):
        return True
    return authorize(principal, action, rec.jurisdiction)


def _record_of(
    service: MediaService, principal: Principal, room_id: str, action: str
) -> RoomRecord:
    try:
        rec = service.get(room_id)
    except MediaError as exc:
        raise center_error(exc) from exc
    if not _visible(principal, rec, action):
        raise NotFound(f"no room {room_id}", code="room_not_found")
    return rec


def _view(request: web.Request, service: MediaService, rec: RoomRecord) -> dict[str, Any]:
    principal = principal_of(request)
    room = service.manager.room(rec.id)
    return {
        "id": rec.id,
        "kind": str(rec.kind),
        "state": str(room.state),
        "record": rec.record,
        "jurisdiction": rec.jurisdiction[-1] if rec.jurisdiction else None,
        "created_by": rec.created_by_actor,
        "created_at": rec.created_at,
        "participants": [{"principal": i.principal, "name": i.name} for i in rec.parties],
        "monitors": [{"principal": i.principal, "name": i.name} for i in rec.monitors],
        "present": [
            {
                "participant": p.id,
                "role": str(p.role),
                "principal": p.principal,
                "state": str(p.state),
            }
            for p in room.participants.values()
        ],
        "ice_servers": ice_servers_for(
            service.manager.settings, principal_key(principal), request.app[keys.CLOCK].now()
        ),
    }


@policy("rooms.check")
async def create_room(request: web.Request) -> web.Response:
    """201 with the room; ``kind`` decides the permission (see the module docstring)."""
    principal = principal_of(request)
    body = await read_object(request)
    problems: dict[str, str] = {k: "unknown field" for k in body if k not in _FIELDS}
    kind_raw = body.get("kind")
    if kind_raw not in (RoomKind.ECHO, RoomKind.CALL):
        problems["kind"] = "must be echo or call"
    record = body.get("record")
    if record is not None and not isinstance(record, bool):
        problems["record"] = "must be a boolean"
    parties = _names(body, "participants", problems)
    monitors = _names(body, "monitors", problems)
    if kind_raw == RoomKind.ECHO and (parties or monitors or record):
        problems["kind"] = "an echo room has only its creator and is never recorded"
    if problems:
        raise ValidationFailed("bad room request", details=problems)
    kind = RoomKind(str(kind_raw))
    if kind is RoomKind.CALL:
        if not authorize(principal, "rooms.create", principal.jurisdiction):
            raise Forbidden(
                f"role {principal.role} may not open calls", details={"action": "rooms.create"}
            )
    elif not authorize(principal, "rooms.check", None, grant="rooms.check"):
        raise Forbidden("no device check for this login", details={"action": "rooms.check"})
    service = media_of(request.app)
    rec = await service.create(
        kind,
        principal,
        parties=await _resolve(request, principal, parties, "rooms.join"),
        monitors=await _resolve(request, principal, monitors, "rooms.monitor"),
        monitor_self=role_allowed(principal, "rooms.monitor"),
        record=record,
    )
    return json_response(_view(request, service, rec), status=201)


@policy("rooms.read")
async def get_room(request: web.Request) -> web.Response:
    service = media_of(request.app)
    rec = _record_of(service, principal_of(request), request.match_info["room_id"], "rooms.read")
    return json_response(_view(request, service, rec))


@policy("rooms.end")
async def delete_room(request: web.Request) -> web.Response:
    """End the room for everyone (``bye`` with ``room_closed``); returns its recordings."""
    principal = principal_of(request)
    service = media_of(request.app)
    rec = _record_of(service, principal, request.match_info["room_id"], "rooms.end")
    recordings = await service.end(rec.id, principal.actor)
    return json_response(
        {
            "id": rec.id,
            "ended": True,
            "recordings": [
                {
                    "id": r.id,
                    "participant": r.participant_id,
                    "state": str(r.state),
                    "size_bytes": r.size_bytes,
                    "duration_s": r.duration_s,
                    "sha256": r.sha256,
                }
                for r in recordings
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/rooms", create_room)
    app.router.add_get("/api/v1/rooms/{room_id}", get_room)
    app.router.add_delete("/api/v1/rooms/{room_id}", delete_room)


_ERROR_TEXT: Final = {
    "400": "Malformed JSON.",
    "401": "Not logged in.",
    "403": "Role not allowed, or no CSRF token.",
    "404": "No such room on this instance (or outside the caller's scope).",
    "415": "Body is not JSON.",
    "422": "Bad fields or invitees (details: field or user -> problem).",
}
_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


def _errors(*codes: str) -> dict[str, Any]:
    return {
        c: {
            "description": _ERROR_TEXT[c],
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
        for c in codes
    }


def rooms_paths() -> dict[str, Any]:
    """OpenAPI paths of this module (merged by web/openapi.py)."""
    room_id = {"name": "room_id", "in": "path", "required": True, "schema": {"type": "string"}}
    room = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["echo", "call"]},
            "state": {"type": "string"},
            "record": {"type": "boolean"},
            "ice_servers": {"type": "array", "items": {"type": "object"}},
            "participants": {"type": "array", "items": {"type": "object"}},
            "monitors": {"type": "array", "items": {"type": "object"}},
            "present": {"type": "array", "items": {"type": "object"}},
        },
    }
    ok = {"content": {"application/json": {"schema": room}}}
    return {
        "/api/v1/rooms": {
            "post": {
                "summary": "Open a media room (echo: device check; call: staff)",
                "tags": ["rooms"],
                "security": [{"session": [], "csrf": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind"],
                                "properties": {
                                    "kind": {"type": "string", "enum": ["echo", "call"]},
                                    "participants": {"type": "array", "items": {"type": "string"}},
                                    "monitors": {"type": "array", "items": {"type": "string"}},
                                    "record": {"type": "boolean"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {"description": "created", **ok},
                    **_errors("400", "401", "403", "415", "422"),
                },
            }
        },
        "/api/v1/rooms/{room_id}": {
            "parameters": [room_id],
            "get": {
                "summary": "A room on this instance",
                "tags": ["rooms"],
                "security": [{"session": []}],
                "responses": {
                    "200": {"description": "the room", **ok},
                    **_errors("401", "403", "404"),
                },
            },
            "delete": {
                "summary": "End a room (recordings are finished and returned)",
                "tags": ["rooms"],
                "security": [{"session": [], "csrf": []}],
                "responses": {"200": {"description": "ended"}, **_errors("401", "403", "404")},
            },
        },
    }
