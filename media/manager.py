"""The transport-agnostic entry point the websocket and HTTP layers call.

One :class:`RoomManager` per process: it decides at start whether encoded forwarding works
(self-test) or media falls back to decode/re-encode, owns the rooms of this instance,
routes signaling by participant id, and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from media import selftest
from media.errors import ParticipantNotFoundError, RoomNotFoundError
from media.events import EventCallback
from media.forwarder import ForwardingMode
from media.ice import IceServerDict, ice_servers_for, rtc_configuration
from media.metrics import MediaCounters
from media.policy import Role, RoomKind
from media.recorder import RecordingInfo, RecordingState, probe_duration, sha256_file
from media.room import Room
from media.settings import ForwardingPreference, MediaSettings
from media.store import MemoryRecordingStore, RecordingStore, SnapshotInfo

_LOGGER = logging.getLogger(__name__)

SERVER_ICE_USER = "center"


@dataclass(frozen=True, slots=True)
class JoinResult:
    participant_id: str
    ice_servers: list[IceServerDict]
    # Kept by the client: takes the same slot back after a dropped connection
    # (``RoomManager.rejoin``) within ``MediaSettings.rejoin_grace_s``.
    rejoin_token: str = ""
    role: str = ""


class RoomManager:
    def __init__(
        self,
        settings: MediaSettings,
        *,
        store: RecordingStore | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.store: RecordingStore = store or MemoryRecordingStore()
        self.counters = MediaCounters()
        self.mode = ForwardingMode.RELAY
        self.self_test_reason = "not run"
        self._now = now or (lambda: datetime.now(UTC))
        self._rooms: dict[str, Room] = {}
        self._participants: dict[str, Room] = {}
        self._started = False

    def __repr__(self) -> str:
        return f"RoomManager({self.mode}, {len(self._rooms)} rooms)"

    async def start(self, *, inject_self_test_failure: bool = False) -> None:
        """Choose the forwarding mode and tidy recordings a crashed process left behind."""
        if self.settings.forwarding is ForwardingPreference.RELAY:
            self.self_test_reason = "disabled by settings"
        else:
            result = await selftest.run_self_test(
                timeout_s=self.settings.self_test_timeout_s,
                inject_failure=inject_self_test_failure,
            )
            self.self_test_reason = result.reason
            if result.ok:
                self.mode = ForwardingMode.FORWARD
            else:
                self.counters.self_test_failures += 1
        self.counters.forwarding_fallback = int(self.mode is ForwardingMode.RELAY)
        if self.mode is ForwardingMode.RELAY:
            _LOGGER.warning(
                "encoded forwarding unavailable (%s): media is decoded and re-encoded "
                "per subscriber, at several times the CPU",
                self.self_test_reason,
            )
        else:
            _LOGGER.info("encoded forwarding self-test passed")
        self._started = True
        await self.recover_recordings()

    # Rooms ----------------------------------------------------------------------------

    async def create_room(
        self,
        kind: RoomKind | str,
        *,
        allowed: Mapping[str, Iterable[Role | str]],
        record: bool | None = None,
        room_id: str | None = None,
        max_video_kbps: int | None = None,
        rejoin_grace_s: float | None = None,
    ) -> str:
        """Open a room; ``allowed`` maps each principal to the roles it may join as;
        ``max_video_kbps`` caps its publishers' video (default: the settings');
        ``rejoin_grace_s`` overrides the media setting for this room."""
        room_id = room_id or uuid.uuid4().hex
        if room_id in self._rooms:
            raise ValueError(f"room {room_id} exists")
        room = Room(
            room_id=room_id,
            kind=RoomKind(kind),
            allowed={p: frozenset(Role(r) for r in roles) for p, roles in allowed.items()},
            record=self.settings.record_calls if record is None else record,
            settings=self.settings,
            mode=self.mode,
            counters=self.counters,
            store=self.store,
            now=self._now,
            configuration=self._server_configuration,
            on_closed=self._room_closed,
            max_video_kbps=max_video_kbps,
            rejoin_grace_s=rejoin_grace_s,
        )
        self._rooms[room_id] = room
        _LOGGER.info("room %s (%s) created", room_id, room.kind)
        return room_id

    def room(self, room_id: str) -> Room:
        try:
            return self._rooms[room_id]
        except KeyError:
            raise RoomNotFoundError(f"no room {room_id} on this instance") from None

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def _server_configuration(self) -> Any:
        return rtc_configuration(ice_servers_for(self.settings, SERVER_ICE_USER, self._now()))

    def _room_closed(self, room: Room) -> None:
        self._rooms.pop(room.id, None)
        for participant_id in [p for p, r in self._participants.items() if r is room]:
            del self._participants[participant_id]

    def _room_of(self, participant_id: str) -> Room:
        room = self._participants.get(participant_id)
        if room is None or participant_id not in room.participants:
            self._participants.pop(participant_id, None)
            raise ParticipantNotFoundError(f"no participant {participant_id}")
        return room

    # Signaling ------------------------------------------------------------------------

    async def join(
        self, room_id: str, role: Role | str, principal: str, on_event: EventCallback
    ) -> JoinResult:
        room = self.room(room_id)
        participant = await room.join(Role(role), principal, on_event)
        self._participants[participant.id] = room
        return JoinResult(
            participant.id,
            ice_servers_for(self.settings, principal, self._now()),
            participant.rejoin_token,
            str(participant.role),
        )

    async def rejoin(
        self,
        room_id: str,
        participant_id: str,
        token: str,
        on_event: EventCallback,
        *,
        principal: str | None = None,
    ) -> JoinResult:
        """A dropped participant takes its slot back on a fresh peer connection (aiortc has
        no ICE restart); then ``offer`` as after ``join``. ``principal``, when given, must be
        the one that held the slot."""
        room = self.room(room_id)
        participant = await room.rejoin(participant_id, token, on_event, principal=principal)
        self._participants[participant.id] = room
        return JoinResult(
            participant.id,
            ice_servers_for(self.settings, participant.principal, self._now()),
            participant.rejoin_token,
            str(participant.role),
        )

    async def release_expired(self) -> int:
        """Release held slots whose grace period is over; the app calls it on its clock."""
        released = 0
        for room in list(self._rooms.values()):
            released += await room.release_expired()
        return released

    async def offer(self, participant_id: str, sdp: str) -> str:
        """The client's offer in, the server's answer (with all candidates) out."""
        return await self._room_of(participant_id).participant(participant_id).handle_offer(sdp)

    async def answer(self, participant_id: str, sdp: str) -> None:
        """The client's answer to an ``offer`` event."""
        await self._room_of(participant_id).participant(participant_id).handle_answer(sdp)

    async def leave(self, participant_id: str) -> None:
        room = self._room_of(participant_id)
        self._participants.pop(participant_id, None)
        await room.leave(participant_id)

    async def drop(self, participant_id: str) -> None:
        """Signaling lost without a leave: hold the slot for a rejoin (calls) or remove."""
        room = self._room_of(participant_id)
        await room.drop(participant_id)

    def mute(self, room_id: str, principals: Iterable[str], muted: bool) -> int:
        """Staff mute: no viewer of the room gets these principals' audio (still recorded)."""
        return self.room(room_id).mute(principals, muted)

    def browser_quality(self, participant_id: str, direction: str, **values: float | None) -> None:
        """Record a sample the participant's page measured itself (``rtc.stats``)."""
        self._room_of(participant_id).browser_quality(participant_id, direction, **values)

    async def snapshot(self, participant_id: str, *, actor: str | None = None) -> SnapshotInfo:
        return await self._room_of(participant_id).snapshot(participant_id, actor)

    async def close_room(self, room_id: str, reason: str = "room_closed") -> list[RecordingInfo]:
        return await self.room(room_id).close(reason)

    async def close_all(self) -> None:
        """Shutdown: end every room (recordings finished and stored); idempotent."""
        rooms = list(self._rooms.values())
        results = await asyncio.gather(
            *(room.close("server_shutdown") for room in rooms), return_exceptions=True
        )
        for room, result in zip(rooms, results, strict=True):
            if isinstance(result, BaseException):
                _LOGGER.error("closing %r failed: %r", room, result)

    # Recordings -----------------------------------------------------------------------

    async def recover_recordings(self) -> int:
        """Mark recordings a killed process left open as interrupted, measured and hashed."""
        count = 0
        for info in await self.store.unfinished_recordings():
            if any(info.room_id == room_id for room_id in self._rooms):
                continue
            changes: dict[str, Any] = {"state": RecordingState.INTERRUPTED}
            if info.path.exists():
                changes["size_bytes"] = info.path.stat().st_size
                changes["sha256"] = await asyncio.to_thread(sha256_file, info.path)
                try:
                    changes["duration_s"] = await asyncio.to_thread(probe_duration, info.path)
                except Exception:
                    changes["duration_s"] = None
            else:
                changes["state"] = RecordingState.EMPTY
            recovered = replace(info, ended_at=self._now(), **changes)
            await self.store.recording_finished(recovered)
            count += 1
        if count:
            _LOGGER.warning("%d recordings were interrupted by a previous crash", count)
        return count

    async def sweep_retention(self, now: datetime | None = None) -> int:
        """Delete recordings older than ``retention_days`` (files first, then the rows)."""
        now = now or self._now()
        cutoff = now - timedelta(days=self.settings.retention_days)
        deleted = 0
        for info in await self.store.expired_recordings(cutoff):
            try:
                info.path.unlink(missing_ok=True)
            except OSError:
                _LOGGER.exception("cannot delete recording %s", info.path)
                continue
            await self.store.recording_deleted(info, now)
            deleted += 1
        if deleted:
            _LOGGER.info("retention: deleted %d recordings older than %s", deleted, cutoff)
        return deleted

    # Metrics --------------------------------------------------------------------------

    def metrics(self) -> dict[str, int]:
        out = self.counters.as_dict()
        out["rooms"] = len(self._rooms)
        out["participants"] = sum(len(r.participants) for r in self._rooms.values())
        return out
