"""The media core inside the app: settings, the room directory, and the lifecycle.

One :class:`MediaService` per app (``app[MEDIA]``), made by :func:`media_ctx`:

* it owns the :class:`~media.manager.RoomManager` (self-test at start, every room closed —
  recordings finished and stored — before the database goes away);
* it remembers what the HTTP layer needs about each room that the manager does not: its
  jurisdiction, creator and invitees (:class:`RoomRecord`). Rooms' media lives on this
  instance; with Redis, :mod:`media.cluster` records them with an owner lease so other
  instances forward their ``rtc.*`` here;
* it leaves rooms for connections that went away: a websocket's unsubscribe callback is
  synchronous, so it queues the participant and the service's one kept task awaits the
  leave (a task spawned per leave would be fire-and-forget, and one spawned on the closing
  connection would be cancelled with it);
* it runs the retention sweep on the app clock and exports the manager's counters as
  ``center_media_*`` metrics (``center_media_forwarding_fallback`` is 1 when encoded
  forwarding failed its self-test: alert on it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from center import audit
from center.authz import JurisdictionPath, Principal
from center.clock import Clock
from center.errors import CenterError
from config.settings import Settings, parse_ice_servers
from media.errors import ROOM_NOT_FOUND, MediaError, RoomNotFoundError
from media.manager import RoomManager
from media.policy import Role, RoomKind
from media.quality import QualitySample
from media.recorder import RecordingInfo, recording_from_json
from media.settings import ForwardingPreference, IceServerConfig, MediaSettings

_LOGGER = logging.getLogger(__name__)
_REJOIN_SWEEP_S = 1.0
_ENDED_KEPT = 200


def principal_key(principal: Principal) -> str:
    """How a principal is named in a room's ``allowed`` map: ``user:3``, later ``guest:…``."""
    return f"{principal.kind}:{principal.id}"


def media_settings(settings: Settings) -> MediaSettings:
    data = Path(settings.data_dir)
    return MediaSettings(
        recordings_dir=Path(settings.recordings_dir)
        if settings.recordings_dir
        else data / "recordings",
        snapshots_dir=Path(settings.snapshots_dir)
        if settings.snapshots_dir
        else data / "snapshots",
        ice_servers=tuple(
            IceServerConfig(tuple(s["urls"]), s.get("username"), s.get("credential"))
            for s in parse_ice_servers(settings.ice_servers)
        ),
        turn_secret=settings.turn_secret or None,
        turn_ttl_s=settings.turn_ttl_s,
        retention_days=settings.recording_retention_days,
        record_calls=settings.record_calls,
        max_parties=settings.media_max_parties,
        forwarding=ForwardingPreference(settings.media_forwarding),
        rejoin_grace_s=settings.media_rejoin_grace_s,
        max_video_kbps=settings.media_max_video_kbps,
    )


@dataclass(frozen=True, slots=True)
class Invitee:
    principal: str  # principal key
    name: str


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """What the center knows about a room beyond its media: scope and invitations."""

    id: str
    kind: RoomKind
    jurisdiction: JurisdictionPath
    created_by: str  # principal key
    created_by_actor: str
    created_at: datetime
    record: bool
    parties: tuple[Invitee, ...] = ()
    monitors: tuple[Invitee, ...] = ()

    def __repr__(self) -> str:
        return f"RoomRecord({self.id}, {self.kind}, by {self.created_by})"


@dataclass(slots=True)
class _Allowed:
    roles: dict[str, set[Role]] = field(default_factory=dict)

    def add(self, principal: str, role: Role) -> None:
        self.roles.setdefault(principal, set()).add(role)


class MediaService:
    def __init__(
        self,
        manager: RoomManager,
        *,
        sessionmaker: Any,
        clock: Clock,
        sweep_every_s: float,
    ) -> None:
        self.manager = manager
        self.rooms: dict[str, RoomRecord] = {}
        self.sessions: dict[tuple[str, str], Any] = {}
        """(connection id, room id) -> the connection's rtc session (web/ws/rtc.py)."""
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._sweep_every_s = sweep_every_s
        self._leaves: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        # Rooms that ended here, newest last, with their quality timeline: staff look at
        # a call's quality after it (GET /api/v1/rooms/{id}/quality). Bounded.
        self.ended: dict[str, tuple[RoomRecord, list[QualitySample]]] = {}
        self.sweeps = 0
        self.cluster: Any = None
        """The :class:`media.cluster.RoomCluster` when instances share Redis, else ``None``."""

    def __repr__(self) -> str:
        return f"MediaService({self.manager!r}, {len(self.rooms)} records)"

    # Rooms ------------------------------------------------------------------------------

    async def create(
        self,
        kind: RoomKind,
        creator: Principal,
        *,
        parties: Iterable[Invitee] = (),
        monitors: Iterable[Invitee] = (),
        monitor_self: bool = False,
        record: bool | None = None,
        max_video_kbps: int | None = None,
        rejoin_grace_s: float | None = None,
    ) -> RoomRecord:
        """Open a room. The creator may join it as a party (and as a monitor when
        ``monitor_self``); an echo room admits its creator only and is never recorded."""
        parties, monitors = tuple(parties), tuple(monitors)
        creator_key = principal_key(creator)
        allowed = _Allowed()
        allowed.add(creator_key, Role.PARTY)
        if kind is RoomKind.CALL:
            if monitor_self:
                allowed.add(creator_key, Role.MONITOR)
            for p in parties:
                allowed.add(p.principal, Role.PARTY)
            for m in monitors:
                allowed.add(m.principal, Role.MONITOR)
        else:
            parties, monitors, record = (), (), False
        self._prune()
        room_id = await self.manager.create_room(
            kind,
            allowed=allowed.roles,
            record=record,
            max_video_kbps=max_video_kbps,
            rejoin_grace_s=rejoin_grace_s,
        )
        rec = RoomRecord(
            id=room_id,
            kind=kind,
            jurisdiction=creator.jurisdiction,
            created_by=creator_key,
            created_by_actor=creator.actor,
            created_at=self._clock.now(),
            record=kind is RoomKind.CALL
            and (self.manager.settings.record_calls if record is None else record),
            parties=parties,
            monitors=monitors,
        )
        self.rooms[room_id] = rec
        if self.cluster is not None:
            try:
                await self.cluster.claim(rec)
            except BaseException:
                await self.manager.close_room(room_id)
                self.rooms.pop(room_id, None)
                raise
        await self._audit(
            creator.actor,
            "media.room_created",
            room_id,
            {
                "kind": str(kind),
                "record": rec.record,
                "parties": [p.principal for p in parties],
                "monitors": [m.principal for m in monitors],
            },
        )
        return rec

    def get(self, room_id: str) -> RoomRecord:
        """The room's record while its media is open here; ``room_not_found`` otherwise."""
        rec = self.rooms.get(room_id)
        try:
            self.manager.room(room_id)
        except RoomNotFoundError:
            self.rooms.pop(room_id, None)
            raise
        if rec is None:
            raise RoomNotFoundError(f"no room {room_id} on this instance")
        return rec

    async def end(self, room_id: str, actor: str) -> list[RecordingInfo]:
        rec = self.get(room_id)
        room = self.manager.room(room_id)
        recordings = await self.manager.close_room(room_id)
        self.rooms.pop(room_id, None)
        if self.cluster is not None:
            await self.cluster.release(room_id)
        self._keep_ended(rec, list(room.quality))
        await self._audit(
            actor, "media.room_ended", room_id, {"recordings": [r.id for r in recordings]}
        )
        return recordings

    # On whichever instance owns the room ---------------------------------------------------
    #
    # With Redis a visit's room lives where its first party joined, and a staff action or a
    # timer may run on another instance: these ask the owner (media/owner.py) when the room
    # is not here. ``room_not_found`` when no instance holds it.

    async def _on_owner(self, room_id: str, op: str, args: dict[str, Any]) -> Any:
        remote = await self.cluster.lookup(room_id) if self.cluster is not None else None
        if remote is None:
            raise RoomNotFoundError(f"no room {room_id}")
        try:
            return await self.cluster.request(remote.owner, op, args)
        except CenterError as exc:
            if exc.code == ROOM_NOT_FOUND:
                raise RoomNotFoundError(str(exc)) from None
            raise

    async def end_anywhere(self, room_id: str, actor: str) -> list[RecordingInfo]:
        """:meth:`end` here, or on the owner instance."""
        try:
            return await self.end(room_id, actor)
        except RoomNotFoundError:
            pass
        found = await self._on_owner(room_id, "end", {"room": room_id, "actor": actor})
        return [recording_from_json(r) for r in found]

    async def mute(self, room_id: str, principals: Iterable[str], muted: bool) -> int:
        """Staff mute: no viewer gets these principals' audio (the recording keeps it),
        here or on the owner instance; returns the present participants it touched."""
        keys = list(principals)
        try:
            return self.manager.mute(room_id, keys, muted)
        except RoomNotFoundError:
            args = {"room": room_id, "principals": keys, "muted": muted}
            return int(await self._on_owner(room_id, "mute", args))

    async def monitored(self, room_id: str) -> bool:
        """Whether a monitor is in the room now, here or on the owner instance."""
        try:
            room = self.manager.room(room_id)
        except RoomNotFoundError:
            seen = await self._on_owner(room_id, "view", {"room": room_id})
            return any(p.get("role") == str(Role.MONITOR) for p in seen["present"])
        return any(p.role is Role.MONITOR for p in room.participants.values())

    def _keep_ended(self, rec: RoomRecord, quality: list[QualitySample]) -> None:
        self.ended[rec.id] = (rec, quality)
        while len(self.ended) > _ENDED_KEPT:
            del self.ended[next(iter(self.ended))]

    def quality(self, room_id: str) -> tuple[RoomRecord, list[QualitySample]]:
        """A room's record and quality timeline, open or ended here."""
        if room_id in self.ended:
            return self.ended[room_id]
        rec = self.get(room_id)
        return rec, list(self.manager.room(room_id).quality)

    def _prune(self) -> None:
        """Forget rooms that ended by themselves (an echo room ends with its party)."""
        open_ids = {room.id for room in self.manager.rooms()}
        for room_id in [r for r in self.rooms if r not in open_ids]:
            del self.rooms[room_id]

    async def _audit(self, actor: str, action: str, room_id: str, details: dict[str, Any]) -> None:
        try:
            async with self._sessionmaker() as session:
                await audit.record(
                    session,
                    actor=actor,
                    action=action,
                    target_type="room",
                    target_id=room_id,
                    details=details,
                    at=self._clock.now(),
                )
                await session.commit()
        except Exception:
            _LOGGER.exception("could not audit %s of room %s", action, room_id)

    # Leaving for connections that went away ---------------------------------------------

    def leave_soon(self, participant_id: str, *, dropped: bool = False) -> None:
        """Queue a leave from synchronous code (an unsubscribe callback); ``dropped``: the
        websocket went away without a leave, so the slot is held for a rejoin."""
        self._leaves.put_nowait((participant_id, dropped))

    async def run_leaves(self) -> None:
        while True:
            participant_id, dropped = await self._leaves.get()
            try:
                if dropped:
                    await self.manager.drop(participant_id)
                else:
                    await self.manager.leave(participant_id)
            except MediaError as exc:
                _LOGGER.debug("leave %s: %s", participant_id, exc.code)
            except Exception:
                _LOGGER.exception("leaving %s failed", participant_id)
            finally:
                self._leaves.task_done()

    async def settle(self) -> None:
        """Wait until every queued leave has run."""
        await self._leaves.join()

    # Rejoin grace -----------------------------------------------------------------------

    async def run_rejoin_deadlines(self) -> None:
        """Release held slots whose grace period is over, every second of the app clock
        (a rejoin after the deadline is refused on the clock anyway; this frees the slot
        and finishes the recording when nobody comes back)."""
        while True:
            try:
                await self.manager.release_expired()
            except Exception:
                _LOGGER.exception("releasing expired slots failed; retrying")
            await self._clock.sleep(_REJOIN_SWEEP_S)

    # Retention --------------------------------------------------------------------------

    async def run_retention(self) -> None:
        """Sweep now, then every ``retention_sweep_s`` of the app clock."""
        while True:
            try:
                deleted = await self.manager.sweep_retention(self._clock.now())
                self.sweeps += 1
                if deleted:
                    _LOGGER.info("retention sweep deleted %d recordings", deleted)
            except Exception:
                _LOGGER.exception("retention sweep failed; retrying at the next one")
            await self._clock.sleep(self._sweep_every_s)
