"""Real aiortc client peers for the media tests.

Every published frame carries its frame counter (plus a base that tells publishers apart)
as big luma blocks in the top rows, which survive VP8 at low bitrates. A receiver that
decodes a wrong picture (a late joiner fed inter frames without a keyframe) reads a bad
checksum or a counter that goes backwards, so tests judge correctness by content.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fractions
import itertools
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from media import codecs
from media.manager import RoomManager
from tests.media.netem import ImpairedLink

WIDTH, HEIGHT = 320, 240
BITS = 24  # 20-bit counter + 4-bit checksum, two rows of 12 blocks
PER_ROW = 12
BLOCK = WIDTH // PER_ROW  # 26 px
ROW_H = 26


def _checksum(v: int) -> int:
    return (v ^ (v >> 4) ^ (v >> 8) ^ (v >> 12) ^ (v >> 16) ^ 0x5) & 0xF


class CounterTrack(VideoStreamTrack):
    """320×240 at 30 fps: moving texture below, ``base + n`` burnt into the top rows."""

    def __init__(self, base: int = 0) -> None:
        super().__init__()
        self.base = base
        self.sent = 0
        rng = np.random.default_rng(base + 1)
        small = rng.integers(40, 200, size=(HEIGHT // 8, WIDTH // 4), dtype=np.uint8)
        self._texture = np.kron(small, np.ones((8, 8), dtype=np.uint8))
        self._uv = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        n = self.sent
        self.sent += 1
        off = (n * 3) % WIDTH
        y = np.ascontiguousarray(self._texture[:, off : off + WIDTH])
        value = ((self.base + n) & 0xFFFFF) | (_checksum((self.base + n) & 0xFFFFF) << 20)
        y[: 2 * ROW_H, :] = 16
        for bit in range(BITS):
            if (value >> bit) & 1:
                row, col = divmod(bit, PER_ROW)
                y[row * ROW_H : (row + 1) * ROW_H, col * BLOCK : (col + 1) * BLOCK] = 235
        frame = av.VideoFrame.from_ndarray(np.concatenate([y, self._uv]), format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        return frame


def read_counter(frame: av.VideoFrame) -> int | None:
    if (frame.width, frame.height) != (WIDTH, HEIGHT):
        return None
    plane = frame.planes[0]
    luma = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
    value = 0
    for bit in range(BITS):
        row, col = divmod(bit, PER_ROW)
        cy, cx = row * ROW_H + ROW_H // 2, col * BLOCK + BLOCK // 2
        if luma[cy - 4 : cy + 4, cx - 4 : cx + 4].mean() > 128:
            value |= 1 << bit
    n = value & 0xFFFFF
    return n if (value >> 20) == _checksum(n) else None


class ToneTrack(AudioStreamTrack):
    """Opus-encodable audio (aiortc's silence is fine: we count frames)."""


@dataclass
class Received:
    kind: str
    mid: str | None
    counters: list[int | None] = field(default_factory=list)
    frames: int = 0

    @property
    def valid(self) -> list[int]:
        return [c for c in self.counters if c is not None]


class Client:
    """One participant: joins through the manager, negotiates, and decodes what it gets."""

    def __init__(
        self,
        manager: RoomManager,
        room_id: str,
        principal: str,
        role: str = "party",
        *,
        base: int | None = 0,
        audio: bool = True,
        receive: bool = True,
        video_codec: str | None = None,
        sdp_filter: Any = None,
        link: ImpairedLink | None = None,
    ) -> None:
        self.manager = manager
        self.room_id = room_id
        self.principal = principal
        self.role = role
        self.video = CounterTrack(base) if base is not None else None
        self.audio = ToneTrack() if audio and base is not None else None
        self.receive = receive
        self.video_codec = video_codec
        self.sdp_filter = sdp_filter or (lambda sdp: sdp)
        # The network between this peer and the server (tests/media/netem.py); clean if None.
        self.link = link
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.events: list[dict[str, Any]] = []
        self.received: dict[int, Received] = {}
        self.participant_id = ""
        self.rejoin_token = ""
        self.ice_servers: list[Any] = []
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Like a websocket client handling messages in order: our own offer/answer exchange
        # completes before a server offer that raced it is applied.
        self._negotiating = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def join(self) -> Client:
        result = await self.manager.join(self.room_id, self.role, self.principal, self.events_in)
        self.participant_id = result.participant_id
        self.ice_servers = result.ice_servers
        self.rejoin_token = result.rejoin_token
        self._tasks.append(asyncio.create_task(self._handle_events()))
        return self

    async def rejoin(self, participant_id: str, token: str) -> Client:
        """Take a dropped participant's slot back (a fresh peer connection)."""
        result = await self.manager.rejoin(self.room_id, participant_id, token, self.events_in)
        self.participant_id = result.participant_id
        self.rejoin_token = result.rejoin_token
        self._tasks.append(asyncio.create_task(self._handle_events()))
        return self

    def events_in(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._inbox.put_nowait(event)

    async def connect(self, extra_receive: int = 0) -> None:
        direction = "sendrecv" if self.receive else "sendonly"
        if self.video is None:
            direction = "recvonly"
        for kind, track in (("video", self.video), ("audio", self.audio)):
            if track is None and not self.receive:
                continue
            transceiver = self.pc.addTransceiver(track or kind, direction=direction)
            if kind == "video" and self.video_codec:
                only = [
                    c
                    for c in codecs.preferences("video", self.video_codec)
                    if c.mimeType.lower() in (self.video_codec, "video/rtx")
                ]
                transceiver.setCodecPreferences(only)
            else:
                codecs.prefer(transceiver)
        for _ in range(extra_receive):
            for kind in ("video", "audio"):
                codecs.prefer(self.pc.addTransceiver(kind, direction="recvonly"))
        async with self._negotiating:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            if self.link is not None:
                self.link.attach(self.pc)
            offer = self.sdp_filter(self.pc.localDescription.sdp)
            answer = await self.manager.offer(self.participant_id, offer)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def _handle_events(self) -> None:
        while True:
            event = await self._inbox.get()
            if event["type"] == "offer":
                async with self._negotiating:
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=event["sdp"], type="offer")
                    )
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    sdp = self.pc.localDescription.sdp
                    await self.manager.answer(self.participant_id, sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        entry = Received(track.kind, transceiver.mid)
        self.received[id(transceiver)] = entry
        self._tasks.append(asyncio.create_task(self._consume(track, entry)))

    async def _consume(self, track: MediaStreamTrack, entry: Received) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            entry.frames += 1
            if isinstance(frame, av.VideoFrame):
                entry.counters.append(read_counter(frame))

    def transceiver_for(self, entry: Received) -> RTCRtpTransceiver:
        return next(t for t in self.pc.getTransceivers() if id(t) == self._key(entry))

    def _key(self, entry: Received) -> int:
        return next(k for k, v in self.received.items() if v is entry)

    def carried(self) -> dict[str, str | None]:
        """mid -> publishing participant, from the latest tracks/offer event."""
        for event in reversed(self.events):
            if event["type"] in ("tracks", "offer"):
                return {t["mid"]: t["participant_id"] for t in event["tracks"]}
        return {}

    def video_from(self, participant_id: str) -> Received | None:
        mids = [m for m, p in self.carried().items() if p == participant_id]
        for entry in self.received.values():
            if entry.kind == "video" and entry.mid in mids:
                return entry
        return None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pc.close()
        if self.link is not None:
            self.link.close()


async def wait_for(predicate: Any, limit_s: float = 30.0, step: float = 0.05) -> None:
    """Poll a condition on media progress (media arrives in real time; no fake clock).

    The limit only turns a hang into a failure; it is generous for a noisy machine.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {limit_s} s")
        await asyncio.sleep(step)


def in_order_share(values: list[int]) -> float:
    """Share of ``values`` on their longest strictly increasing run (not necessarily
    contiguous). A test peer's decoder shows a broken picture after packets it never got;
    one in 16 of those passes the 4-bit checksum as a wrong counter, which this discounts
    where a lossy leg to an aiortc viewer is part of the test."""
    tails: list[int] = []
    for value in values:
        index = bisect.bisect_left(tails, value)
        if index == len(tails):
            tails.append(value)
        else:
            tails[index] = value
    return len(tails) / len(values) if values else 1.0


def strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


TIME_BASE = fractions.Fraction(1, 90000)
