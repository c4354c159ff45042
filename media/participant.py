"""One participant: its peer connection with the server and the negotiation around it.

The client makes the first offer. Each m-line it sends on is a publication; each m-line it
can receive on becomes a *slot* (a sender with a :class:`~media.slot.SlotTrack`) that
carries one visible publication at a time. When there are more publications to show than
free slots, the server adds ``sendonly`` m-lines and re-offers (``offer`` event); only one
server offer is outstanding at a time, and a client offer while it is outstanding is
refused with ``invalid_state`` (no rollback in aiortc). The server side is not trickle: the
answer and offers carry every candidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from media import aiortc_adapter, codecs
from media.errors import BadSdpError, InvalidStateError
from media.events import (
    EventCallback,
    RoomEvent,
    TrackInfo,
    bye_event,
    offer_event,
    state_event,
    tracks_event,
)
from media.forwarder import ForwardingMode, TrackForwarder
from media.metrics import MediaCounters
from media.policy import Role
from media.slot import SlotTrack

_LOGGER = logging.getLogger(__name__)

Received = tuple[MediaStreamTrack, RTCRtpTransceiver]


class ParticipantState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(slots=True, eq=False)
class Slot:
    transceiver: RTCRtpTransceiver
    track: SlotTrack

    @property
    def kind(self) -> str:
        return self.track.kind

    def info(self) -> TrackInfo:
        source = self.track.source
        return {
            "mid": self.transceiver.mid,
            "kind": self.kind,
            "participant_id": source.publisher_id if source else None,
        }


def _validate_sdp(sdp: object) -> str:
    """aiortc parses almost anything without complaint; reject what cannot be an SDP."""
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or "\nm=" not in sdp:
        raise BadSdpError("not a session description")
    return sdp


class Participant:
    def __init__(
        self,
        *,
        participant_id: str,
        rejoin_token: str = "",
        room_id: str,
        role: Role,
        principal: str,
        publishes: bool,
        on_event: EventCallback,
        configuration: RTCConfiguration,
        mode: ForwardingMode,
        counters: MediaCounters,
        subscriber_queue_frames: int,
        on_tracks: Callable[[Participant, list[Received]], Awaitable[None]],
        on_failed: Callable[[Participant], None],
        hole_timeout_s: float = 0.3,
    ) -> None:
        self.id = participant_id
        # Proves a later rejoin comes from this participant (JoinResult.rejoin_token).
        self.rejoin_token = rejoin_token
        self.room_id = room_id
        self.role = role
        self.principal = principal
        self.publishes = publishes
        self.state = ParticipantState.NEW
        self.publications: list[TrackForwarder] = []
        self.pc = RTCPeerConnection(configuration)
        self._on_event = on_event
        self._mode = mode
        self._counters = counters
        self._queue_frames = subscriber_queue_frames
        self._hole_timeout_s = hole_timeout_s
        self._on_tracks = on_tracks
        self._on_failed = on_failed
        self._lock = asyncio.Lock()
        self._slots: list[Slot] = []
        self._preferred: set[int] = set()
        self._pending: list[TrackForwarder] = []
        self._received: list[Received] = []
        self._renegotiate = asyncio.Event()
        self._answered = asyncio.Event()
        self._offered = asyncio.Event()
        self._closing: asyncio.Future[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self._tasks = [asyncio.create_task(self._negotiate(), name=f"negotiate {self.id}")]

    def __repr__(self) -> str:
        return f"Participant({self.id}, {self.role}, {self.state})"

    # Events ---------------------------------------------------------------------------

    def _emit(self, event: RoomEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            _LOGGER.exception("%r: event callback failed for %s", self, event.get("type"))

    def notify(self, event: RoomEvent) -> None:
        """Deliver a room event (the room has already applied the visibility policy)."""
        if self.state is not ParticipantState.CLOSED:
            self._emit(event)

    def _set_state(self, state: ParticipantState) -> None:
        if state is self.state:
            return
        _LOGGER.debug("%r state %s -> %s", self, self.state, state)
        self.state = state
        self._emit(state_event(state))

    def _on_connection_state(self) -> None:
        if self.state is ParticipantState.CLOSED:
            return
        state = self.pc.connectionState
        if state == "connecting":
            self._set_state(ParticipantState.CONNECTING)
        elif state == "connected":
            self._set_state(ParticipantState.CONNECTED)
        elif state == "failed" or (state == "closed" and self._closing is None):
            # "closed" without our close(): the peer went away (DTLS close_notify from a
            # page that was torn down) — as lost to the room as a failed connection.
            self._counters.peers_failed += 1
            _LOGGER.info("%r: peer connection %s", self, state)
            self._on_failed(self)

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        if self.publishes and self._mode is ForwardingMode.FORWARD:
            # Must happen now: the receiver starts its decoder when the peer connects.
            try:
                aiortc_adapter.tap_receiver(
                    transceiver.receiver, hole_timeout_s=self._hole_timeout_s
                )
            except aiortc_adapter.AdapterError:
                # The forwarder copes with decoded frames; the self-test should have
                # caught this, so make it loud.
                _LOGGER.exception("%r: cannot tap the %s receiver", self, track.kind)
        self._received.append((track, transceiver))

    # Slots ----------------------------------------------------------------------------

    def track_infos(self) -> list[TrackInfo]:
        return [slot.info() for slot in self._slots if slot.transceiver.mid is not None]

    def _slot_for(self, transceiver: RTCRtpTransceiver) -> Slot | None:
        return next((s for s in self._slots if s.transceiver is transceiver), None)

    def _add_slot(self, transceiver: RTCRtpTransceiver) -> Slot:
        track = SlotTrack(transceiver.kind, counters=self._counters, max_queue=self._queue_frames)
        transceiver.sender.replaceTrack(track)
        if self._mode is ForwardingMode.FORWARD:
            aiortc_adapter.bridge_keyframe_requests(transceiver.sender, track.on_keyframe_request)
            aiortc_adapter.bridge_bitrate_estimates(transceiver.sender, track.on_bitrate_estimate)
        slot = Slot(transceiver, track)
        self._slots.append(slot)
        return slot

    def _free_slot(self, kind: str) -> Slot | None:
        return next((s for s in self._slots if s.kind == kind and s.track.source is None), None)

    def _refresh_send_codecs(self) -> None:
        for slot in self._slots:
            slot.track.send_mime = aiortc_adapter.negotiated_codec(slot.transceiver)

    def carries(self, source: TrackForwarder) -> bool:
        return source in self._pending or any(s.track.source is source for s in self._slots)

    def subscribe(self, source: TrackForwarder) -> None:
        """Show ``source`` on a free slot now, or on a new m-line after a re-offer."""
        if self.state is ParticipantState.CLOSED or source.ended or self.carries(source):
            return
        slot = self._free_slot(source.kind)
        if slot is not None:
            slot.track.bind(source)
            if slot.transceiver.mid is not None:
                self._emit(tracks_event(self.track_infos()))
            return
        self._pending.append(source)
        self._renegotiate.set()

    def _bind_pending(self) -> bool:
        """Move waiting publications onto free slots; the rest still need new m-lines."""
        bound = False
        waiting: list[TrackForwarder] = []
        for source in self._pending:
            if source.ended:
                continue
            slot = self._free_slot(source.kind)
            if slot is None:
                waiting.append(source)
            else:
                slot.track.bind(source)
                bound = True
        self._pending = waiting
        if waiting:
            self._renegotiate.set()
        return bound

    def unsubscribe(self, source: TrackForwarder) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(source)
        changed = False
        for slot in self._slots:
            if slot.track.source is source:
                slot.track.unbind()
                changed = True
        if changed and self.state is not ParticipantState.CLOSED:
            self._emit(tracks_event(self.track_infos()))

    # Negotiation ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.state is ParticipantState.CLOSED:
            raise InvalidStateError(f"participant {self.id} is closed")

    async def handle_offer(self, sdp: str) -> str:
        """Apply the client's offer and return the answer (with every ICE candidate)."""
        sdp = _validate_sdp(sdp)
        async with self._lock:
            self._check_open()
            if self.pc.signalingState != "stable":
                raise InvalidStateError(
                    f"signaling state is {self.pc.signalingState}: answer the server's offer first"
                )
            self._received = []
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise BadSdpError(f"offer rejected: {exc}") from exc
            received, self._received = self._received, []
            receiving = {id(t) for _, t in received}
            for transceiver in self.pc.getTransceivers():
                if id(transceiver) not in self._preferred:
                    codecs.prefer(transceiver)
                    self._preferred.add(id(transceiver))
                aiortc_adapter.apply_codec_preferences(transceiver)
                if self._slot_for(transceiver) is not None:
                    continue
                receives = id(transceiver) in receiving and self.publishes
                if aiortc_adapter.remote_receives(transceiver):
                    self._add_slot(transceiver)
                    transceiver.direction = "sendrecv" if receives else "sendonly"
                elif not receives:
                    transceiver.direction = "inactive"
            if self.publishes and received:
                await self._on_tracks(self, received)
            self._bind_pending()
            try:
                answer = await self.pc.createAnswer()
                await self.pc.setLocalDescription(answer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise BadSdpError(f"cannot answer this offer: {exc}") from exc
            self._refresh_send_codecs()
            self._offered.set()
            self._emit(tracks_event(self.track_infos()))
            return str(self.pc.localDescription.sdp)

    async def handle_answer(self, sdp: str) -> None:
        """Apply the client's answer to a server offer."""
        sdp = _validate_sdp(sdp)
        async with self._lock:
            self._check_open()
            if self.pc.signalingState != "have-local-offer":
                raise InvalidStateError(f"no server offer outstanding ({self.pc.signalingState})")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise BadSdpError(f"answer rejected: {exc}") from exc
            self._refresh_send_codecs()
            self._answered.set()
            self._emit(tracks_event(self.track_infos()))

    async def _negotiate(self) -> None:
        """Kept task: re-offer whenever publications wait for an m-line."""
        await self._offered.wait()
        while True:
            await self._renegotiate.wait()
            async with self._lock:
                self._renegotiate.clear()
                if self.state is ParticipantState.CLOSED:
                    return
                bound = self._bind_pending()
                pending, self._pending = self._pending, []
                for source in pending:
                    transceiver = self.pc.addTransceiver(source.kind, direction="sendonly")
                    codecs.prefer(transceiver, source.codec)
                    self._preferred.add(id(transceiver))
                    self._add_slot(transceiver).track.bind(source)
                if not pending:
                    if bound:
                        self._emit(tracks_event(self.track_infos()))
                    continue
                offer = await aiortc_adapter.create_offer(self.pc)
                await self.pc.setLocalDescription(offer)
                self._answered.clear()
                self._emit(offer_event(str(self.pc.localDescription.sdp), self.track_infos()))
            await self._answered.wait()

    # Close ----------------------------------------------------------------------------

    async def close(self, reason: str = "left") -> None:
        """Close the peer connection and every slot; safe to call twice or concurrently."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            self._set_state(ParticipantState.CLOSED)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._pending.clear()
            for slot in self._slots:
                slot.track.stop()
            try:
                await self.pc.close()
            except Exception:
                _LOGGER.exception("%r: closing the peer connection failed", self)
            self._emit(bye_event(reason))
            self._on_event = self._closed_callback
        finally:
            self._closing.set_result(None)

    def _closed_callback(self, event: RoomEvent) -> None:
        _LOGGER.debug("%r: dropped %s after close", self, event.get("type"))
