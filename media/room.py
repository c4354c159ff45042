"""A room: its participants, who sees whom, its forwarders and its recordings.

Rooms live on the instance that created them. Failed peers are removed by the room's one
kept task (the peer's state callback cannot await), so no work outlives the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aiortc import RTCConfiguration

from media import aiortc_adapter, policy
from media.errors import (
    InvalidStateError,
    NoMediaError,
    NotAllowedError,
    ParticipantNotFoundError,
    RejoinExpiredError,
)
from media.events import EventCallback, presence_event, reconnecting_event
from media.forwarder import ForwardingMode, TrackForwarder
from media.metrics import MediaCounters
from media.participant import Participant, Received
from media.policy import Role, RoomKind
from media.quality import Grade, QualityMeter, QualitySample, grade
from media.recorder import ParticipantRecording, RecordingInfo, RecordingState, file_extension
from media.settings import MediaSettings
from media.snapshot import take_snapshot
from media.store import RecordingStore, SnapshotInfo

_LOGGER = logging.getLogger(__name__)


class RoomState(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Held:
    """A dropped participant's slot, kept until ``deadline`` on the room's clock."""

    principal: str
    role: Role
    token: str
    deadline: datetime


class Room:
    def __init__(
        self,
        *,
        room_id: str,
        kind: RoomKind,
        allowed: Mapping[str, frozenset[Role]],
        record: bool,
        settings: MediaSettings,
        mode: ForwardingMode,
        counters: MediaCounters,
        store: RecordingStore,
        now: Callable[[], datetime],
        configuration: Callable[[], RTCConfiguration],
        on_closed: Callable[[Room], None],
        max_video_kbps: int | None = None,
        rejoin_grace_s: float | None = None,
    ) -> None:
        self.id = room_id
        self.kind = kind
        self.state = RoomState.OPEN
        self.participants: dict[str, Participant] = {}
        # Who each participant id is (kept after it leaves): a visit tells its sides apart.
        self.principals: dict[str, str] = {}
        self.recordings: list[RecordingInfo] = []
        self._allowed = dict(allowed)
        self._record = record and policy.recorded(kind, Role.PARTY)
        self._settings = settings
        kbps = settings.max_video_kbps if max_video_kbps is None else max_video_kbps
        self.max_video_bps = kbps * 1000 if kbps > 0 else None
        # A room's own grace (a prison visit's ``visit_rejoin_grace_s``), else the media one.
        self.rejoin_grace_s = settings.rejoin_grace_s if rejoin_grace_s is None else rejoin_grace_s
        self._mode = mode
        self._counters = counters
        self._store = store
        self._now = now
        self._configuration = configuration
        self._on_closed = on_closed
        self._active_recordings: dict[str, ParticipantRecording] = {}
        self._held: dict[str, _Held] = {}
        # Principals whose audio no viewer gets (staff mute); kept across rejoins.
        self._muted: set[str] = set()
        # The call's quality timeline (bounded); kept after the room closes for the API.
        self.quality: deque[QualitySample] = deque(maxlen=settings.quality_timeline_max)
        self._grades: dict[tuple[str, str, str], Grade] = {}
        # Failed participants to remove or hold; ``None`` stops the reaper (room closing).
        self._failures: asyncio.Queue[Participant | None] = asyncio.Queue()
        self._closing: asyncio.Future[None] | None = None
        self._reaper = asyncio.create_task(self._reap(), name=f"room {room_id} reaper")
        self._sampler = asyncio.create_task(self._sample_quality(), name=f"room {room_id} quality")

    def __repr__(self) -> str:
        return f"Room({self.id}, {self.kind}, {self.state}, {len(self.participants)} in)"

    def _set_state(self, state: RoomState) -> None:
        if state is not self.state:
            _LOGGER.debug("%r state %s -> %s", self, self.state, state)
            self.state = state

    def _sees(self, viewer: Participant, publisher: Participant) -> bool:
        return policy.sees(self.kind, viewer.role, viewer.id, publisher.role, publisher.id)

    def live_recordings(self) -> list[ParticipantRecording]:
        return list(self._active_recordings.values())

    def participant(self, participant_id: str) -> Participant:
        try:
            return self.participants[participant_id]
        except KeyError:
            raise ParticipantNotFoundError(f"no participant {participant_id} here") from None

    # Membership -----------------------------------------------------------------------

    async def join(self, role: Role, principal: str, on_event: EventCallback) -> Participant:
        return self._admit(uuid.uuid4().hex, role, principal, on_event)

    async def rejoin(
        self,
        participant_id: str,
        token: str,
        on_event: EventCallback,
        *,
        principal: str | None = None,
    ) -> Participant:
        """Take back a dropped participant's slot: same id, same recording, new connection.

        Refused with ``not_allowed`` if there is no such held slot or the token is wrong,
        and with ``rejoin_expired`` once the grace period is over (the slot is released).
        """
        live = self.participants.get(participant_id)
        if (
            live is not None
            and self._holds(live)
            and hmac.compare_digest(live.rejoin_token, token)
            and (principal is None or principal == live.principal)
        ):
            # The page saw its connection die before the server did (a browser notices a
            # dead link within seconds, ICE consent here takes 30 s): its rejoin is the drop.
            await self._suspend(live)
        held = self._held.get(participant_id)
        if held is None or not hmac.compare_digest(held.token, token):
            raise NotAllowedError("no dropped participant to take back with this token")
        if principal is not None and principal != held.principal:
            raise NotAllowedError("that slot belongs to someone else")
        if self._now() >= held.deadline:
            await self._release(participant_id)
            raise RejoinExpiredError(f"the grace period of {participant_id} is over")
        del self._held[participant_id]
        participant = self._admit(participant_id, held.role, held.principal, on_event)
        self._counters.rejoins += 1
        return participant

    def _admit(
        self, participant_id: str, role: Role, principal: str, on_event: EventCallback
    ) -> Participant:
        if self.state is not RoomState.OPEN:
            raise InvalidStateError(f"room {self.id} is {self.state}")
        present: dict[Role, int] = {}
        for p in self.participants.values():
            present[p.role] = present.get(p.role, 0) + 1
        policy.check_join(
            self.kind, role, principal, self._allowed, present, self._settings.max_parties
        )
        participant = Participant(
            participant_id=participant_id,
            rejoin_token=secrets.token_urlsafe(18),
            room_id=self.id,
            role=role,
            principal=principal,
            publishes=policy.publishes(self.kind, role),
            on_event=on_event,
            configuration=self._configuration(),
            mode=self._mode,
            counters=self._counters,
            subscriber_queue_frames=self._settings.subscriber_queue_frames,
            hole_timeout_s=self._settings.hole_timeout_s,
            on_tracks=self._on_tracks,
            on_failed=self._on_failed,
        )
        self.participants[participant.id] = participant
        self.principals[participant.id] = principal
        _LOGGER.info("%r: %s joined as %s (%s)", self, principal, role, participant.id)
        for other in self.participants.values():
            if other is participant:
                continue
            if self._sees(other, participant):
                other.notify(presence_event(True, participant.id, participant.role))
            if self._sees(participant, other):
                participant.notify(presence_event(True, other.id, other.role))
                for source in other.publications:
                    participant.subscribe(source)
        return participant

    async def _on_tracks(self, participant: Participant, received: list[Received]) -> None:
        """New publications of ``participant``: fan them out, record them, start them."""
        new: list[TrackForwarder] = []
        for track, transceiver in received:
            forwarder = TrackForwarder(
                track=track,
                receiver=transceiver.receiver,
                publisher_id=participant.id,
                codec=aiortc_adapter.negotiated_codec(transceiver),
                mode=self._mode,
                counters=self._counters,
                pli_min_interval_s=self._settings.pli_min_interval_s,
                max_video_bps=self.max_video_bps,
            )
            forwarder.muted = forwarder.kind == "audio" and participant.principal in self._muted
            participant.publications.append(forwarder)
            new.append(forwarder)
        if self._record:
            recording = self._active_recordings.get(participant.id)
            if recording is not None and not recording.reattach(new):
                # A rejoin with other codecs: this file ends, a new one follows it.
                await self._finish_recording(participant.id)
                recording = None
            if recording is None:
                await self._start_recording(participant, new)
        for forwarder in new:
            for viewer in self.participants.values():
                if self._sees(viewer, participant):
                    viewer.subscribe(forwarder)
            forwarder.start()

    async def _start_recording(
        self, participant: Participant, forwarders: list[TrackForwarder]
    ) -> None:
        recording_id = uuid.uuid4().hex
        ext = file_extension([f.codec for f in forwarders], self._mode)
        info = RecordingInfo(
            id=recording_id,
            room_id=self.id,
            participant_id=participant.id,
            path=self._settings.recordings_dir / self.id / f"{recording_id}{ext}",
            started_at=self._now(),
            state=RecordingState.WAITING,
        )
        recording = ParticipantRecording(
            info=info,
            forwarders=forwarders,
            cluster_ms=self._settings.recording_cluster_ms,
            now=self._now,
        )
        self._active_recordings[participant.id] = recording
        try:
            await self._store.recording_started(info)
        except Exception:
            _LOGGER.exception("%r: could not store the start of %s", self, recording_id)
        recording.start()

    async def _finish_recording(self, participant_id: str) -> None:
        recording = self._active_recordings.pop(participant_id, None)
        if recording is None:
            return
        info = await recording.close()
        self.recordings.append(info)
        if info.state is RecordingState.FINISHED:
            self._counters.recordings_finished += 1
        try:
            await self._store.recording_finished(info)
        except Exception:
            _LOGGER.exception("%r: could not store the end of %s", self, info.id)

    def _on_failed(self, participant: Participant) -> None:
        self._failures.put_nowait(participant)

    async def _reap(self) -> None:
        while True:
            failed = await self._failures.get()
            if failed is None:
                return
            participant_id = failed.id
            # The very object that failed: a page that already rejoined holds the same id
            # on a new connection, and that one must not go with its old one.
            participant = self.participants.get(participant_id)
            if participant is not failed or self.state is not RoomState.OPEN:
                continue
            try:
                if self._holds(participant):
                    await self._suspend(participant)
                else:
                    await self.leave(participant_id, reason="failed")
            except Exception:
                _LOGGER.exception("%r: removing the failed %s failed", self, participant_id)

    async def _sample_quality(self) -> None:
        """Kept task: sample every participant's uplink and downlink (media/quality.py)."""
        meters: dict[int, QualityMeter] = {}
        while True:
            await asyncio.sleep(self._settings.quality_sample_s)
            at, mono = self._now(), time.monotonic()
            present = list(self.participants.values())
            meters = {id(p): meters.get(id(p)) or QualityMeter() for p in present}
            for participant in present:
                try:
                    samples = await meters[id(participant)].sample(participant, at, mono)
                except Exception:
                    _LOGGER.exception("%r: quality sample of %r failed", self, participant)
                    continue
                for sample in samples:
                    self._record_quality(sample)
            for participant_id, held in list(self._held.items()):
                for direction in ("uplink", "downlink"):
                    self._record_quality(
                        QualitySample.lost(at, participant_id, str(held.role), direction)
                    )

    def browser_quality(
        self,
        participant_id: str,
        direction: str,
        *,
        loss: float | None,
        jitter_ms: float | None,
        rtt_ms: float | None,
        bitrate_kbps: float | None,
        fps: float | None,
    ) -> QualitySample:
        """A sample the participant's page measured with ``getStats()`` (``rtc.stats``): the
        browser's end of the same leg, kept beside the server's own samples."""
        participant = self.participant(participant_id)
        state = str(participant.state)
        level = grade(loss, jitter_ms, rtt_ms) if state == "connected" else Grade.LOST
        sample = QualitySample(
            self._now(), participant.id, str(participant.role), direction, state, level,
            loss, jitter_ms, rtt_ms, bitrate_kbps, fps, source="browser",
        )  # fmt: skip
        self._record_quality(sample)
        return sample

    def _record_quality(self, sample: QualitySample) -> None:
        self.quality.append(sample)
        key = (sample.participant_id, sample.direction, sample.source)
        if self._grades.get(key) is sample.grade:
            return
        self._grades[key] = sample.grade
        event = {"type": "quality", **sample.as_dict()}
        for viewer in self.participants.values():
            if viewer.role is Role.MONITOR:
                viewer.notify(event)

    def _holds(self, participant: Participant) -> bool:
        return self.kind is RoomKind.CALL and self.rejoin_grace_s > 0

    async def _suspend(self, participant: Participant) -> None:
        """A dropped connection: keep the slot and the recording for the grace period."""
        grace = self.rejoin_grace_s
        self._held[participant.id] = _Held(
            principal=participant.principal,
            role=participant.role,
            token=participant.rejoin_token,
            deadline=self._now() + timedelta(seconds=grace),
        )
        self.participants.pop(participant.id, None)
        _LOGGER.info("%r: %s dropped; held for %.0f s", self, participant.id, grace)
        for other in self.participants.values():
            for source in participant.publications:
                other.unsubscribe(source)
            if self._sees(other, participant):
                other.notify(reconnecting_event(participant.id, participant.role, grace))
        recording = self._active_recordings.get(participant.id)
        if recording is not None:
            recording.suspend()
        await participant.close("failed")
        for forwarder in participant.publications:
            await forwarder.close()

    def held(self) -> list[str]:
        """Participants that dropped and may still rejoin."""
        return list(self._held)

    async def release_expired(self) -> int:
        """Release every held slot whose grace period is over (on the room's clock)."""
        now = self._now()
        expired = [pid for pid, held in self._held.items() if now >= held.deadline]
        for participant_id in expired:
            await self._release(participant_id)
        return len(expired)

    async def _release(self, participant_id: str) -> None:
        held = self._held.pop(participant_id, None)
        if held is None:
            return
        _LOGGER.info("%r: %s did not come back in time", self, participant_id)
        for other in self.participants.values():
            if policy.sees(self.kind, other.role, other.id, held.role, participant_id):
                other.notify(presence_event(False, participant_id, held.role))
        await self._finish_recording(participant_id)

    async def drop(self, participant_id: str) -> None:
        """The participant's signaling went away without a leave (its websocket dropped):
        hold its slot for the grace period like a failed connection, or remove it."""
        participant = self.participant(participant_id)
        if self._holds(participant):
            await self._suspend(participant)
        else:
            await self.leave(participant_id, reason="failed")

    async def leave(self, participant_id: str, reason: str = "left") -> None:
        participant = self.participant(participant_id)
        await self._remove(participant, reason, announce=True)
        if self.kind is RoomKind.ECHO and not self.participants:
            await self.close("ended")

    async def _remove(self, participant: Participant, reason: str, *, announce: bool) -> None:
        if self.participants.pop(participant.id, None) is None:
            return
        _LOGGER.info("%r: %s left (%s)", self, participant.id, reason)
        for other in self.participants.values():
            for source in participant.publications:
                other.unsubscribe(source)
            if announce and self._sees(other, participant):
                other.notify(presence_event(False, participant.id, participant.role))
        await self._finish_recording(participant.id)
        await participant.close(reason)
        for forwarder in participant.publications:
            await forwarder.close()

    # Mute -------------------------------------------------------------------------------

    def mute(self, principals: Iterable[str], muted: bool) -> int:
        """Staff mute (or unmute) these principals: no viewer gets their audio, now and
        after a rejoin; their recording keeps it. Returns how many present participants
        it touched (a principal not in yet is muted when it publishes)."""
        keys = set(principals)
        if muted:
            self._muted |= keys
        else:
            self._muted -= keys
        touched = 0
        for participant in self.participants.values():
            if participant.principal not in keys:
                continue
            touched += 1
            for forwarder in participant.publications:
                if forwarder.kind == "audio":
                    forwarder.muted = muted
        _LOGGER.info("%r: %s %s", self, "muted" if muted else "unmuted", sorted(keys))
        return touched

    def is_muted(self, principal: str) -> bool:
        return principal in self._muted

    # Snapshots --------------------------------------------------------------------------

    async def snapshot(self, participant_id: str, actor: str | None) -> SnapshotInfo:
        participant = self.participant(participant_id)
        forwarder = next(
            (f for f in participant.publications if f.kind == "video" and not f.ended), None
        )
        if forwarder is None:
            raise NoMediaError(f"participant {participant_id} publishes no video")
        info = await take_snapshot(
            forwarder,
            directory=self._settings.snapshots_dir,
            room_id=self.id,
            timeout_s=self._settings.snapshot_timeout_s,
            now=self._now,
        )
        self._counters.snapshots_taken += 1
        await self._store.snapshot_taken(info, actor)
        return info

    # Close ------------------------------------------------------------------------------

    async def close(self, reason: str = "room_closed") -> list[RecordingInfo]:
        """End every participant and recording; idempotent. Returns the recordings."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return self.recordings
        self._closing = asyncio.get_running_loop().create_future()
        try:
            self._set_state(RoomState.CLOSING)
            # The reaper finishes the removal it may be in the middle of (cancelling it
            # there would leave a held participant's forwarders running), then stops.
            if self._reaper is not asyncio.current_task():
                self._failures.put_nowait(None)
                await self._reaper
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            for participant in list(self.participants.values()):
                try:
                    await self._remove(participant, reason, announce=False)
                except Exception:
                    _LOGGER.exception("%r: removing %r failed", self, participant)
            self._held.clear()
            for participant_id in list(self._active_recordings):
                await self._finish_recording(participant_id)
            self._set_state(RoomState.CLOSED)
            self._on_closed(self)
        finally:
            self._closing.set_result(None)
        return self.recordings
