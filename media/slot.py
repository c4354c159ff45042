"""The outgoing track behind one of a subscriber's senders.

A sender whose track ends stops for good, so a subscriber's m-line keeps one
:class:`SlotTrack` for its whole life and the track is re-pointed at whichever publication
the slot carries (none, while a party is away). Timestamps are re-based on every switch so
the subscriber sees one continuous stream.

In ``forward`` mode a slot withholds video until a keyframe (a decoder that starts on an
inter frame shows garbage at full frame rate), also after frames the server itself lost
(``EncodedFrame.discontinuity``), and when it has to drop frames for a slow
sender it re-gates and asks the publisher for a keyframe: sequence numbers are renumbered
per subscriber, so the subscriber could not notice the loss itself. If the codec the slot's
sender packetizes with differs from the publication's (a browser that insists on H.264 on
one leg), this one slot decodes and lets the sender re-encode.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

from media.bitstream import H264, VP8, EncodedFrame
from media.forwarder import MediaItem, TrackForwarder
from media.metrics import MediaCounters

_LOGGER = logging.getLogger(__name__)

_END = object()
_DECODERS = {VP8: "libvpx", H264: "h264"}
# One frame of media at the usual rates, to keep timestamps increasing across a switch.
_STEP = {"video": 3000, "audio": 960}


class SlotTrack(MediaStreamTrack):
    def __init__(self, kind: str, *, counters: MediaCounters, max_queue: int) -> None:
        super().__init__()
        self.kind = kind
        self.send_mime: str | None = None
        self._counters = counters
        self._max_queue = max_queue
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._source: TrackForwarder | None = None
        self._need_keyframe = kind == "video"
        self._offset: int | None = None
        self._last_out: int | None = None
        self._decoder: Any = None
        self._decoder_mime: str | None = None
        self._decoded: deque[Frame] = deque()
        self.frames_out = 0
        self.frames_gated = 0

    def __repr__(self) -> str:
        source = self._source.id if self._source else None
        return f"SlotTrack({self.kind}, source={source}, send={self.send_mime})"

    @property
    def source(self) -> TrackForwarder | None:
        return self._source

    def bind(self, source: TrackForwarder) -> None:
        """Carry ``source`` from now on (detaching any previous one)."""
        if self._source is source:
            return
        self.unbind()
        self._source = source
        self._need_keyframe = self.kind == "video"
        self._offset = None
        self._decoder = None
        source.add_sink(self)

    def unbind(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.remove_sink(self)
        self._drain()

    def _drain(self) -> int:
        dropped = 0
        while not self._queue.empty():
            if self._queue.get_nowait() is _END:
                self._queue.put_nowait(_END)
                break
            dropped += 1
        self._decoded.clear()
        return dropped

    # Sink protocol -------------------------------------------------------------------

    def push(self, item: MediaItem) -> None:
        if self.readyState != "live":
            return
        if self.kind == "audio" and self._source is not None and self._source.muted:
            # Muted by staff: this viewer hears nothing (no packets: the browser plays
            # silence); the recorder, another sink, still gets every frame.
            self._counters.frames_muted += 1
            return
        if (
            isinstance(item, EncodedFrame)
            and item.discontinuity
            and self.kind == "video"
            and not item.keyframe
        ):
            # The publisher's stream lost frames before the server: an inter frame now
            # references a picture this subscriber never got. Freeze on the last good
            # picture until the keyframe the forwarder keeps asking for.
            self._need_keyframe = True
        if isinstance(item, EncodedFrame) and self._need_keyframe:
            if not item.keyframe:
                self.frames_gated += 1
                self._counters.frames_gated += 1
                return
            self._need_keyframe = False
        if self._queue.qsize() >= self._max_queue:
            dropped = self._drain()
            self._counters.frames_dropped += dropped
            if isinstance(item, EncodedFrame) and self.kind == "video" and not item.keyframe:
                self._need_keyframe = True
                self._counters.frames_dropped += 1
                if self._source is not None:
                    self._source.request_keyframe("frames dropped for a slow subscriber")
                return
        self._queue.put_nowait(item)

    def source_ended(self, forwarder: TrackForwarder) -> None:
        if self._source is forwarder:
            self._source = None
            self._drain()

    def on_bitrate_estimate(self, bitrate: int) -> None:
        """Bridged from the sender: the subscriber's REMB, for the publisher's bitrate."""
        if self._source is not None:
            self._source.subscriber_estimate(self, bitrate)

    def on_keyframe_request(self) -> None:
        """Bridged from the sender: the subscriber sent a PLI or FIR."""
        self._counters.subscriber_keyframe_requests += 1
        if self._source is not None:
            self._source.request_keyframe("subscriber asked")

    # MediaStreamTrack ------------------------------------------------------------------

    async def recv(self) -> Frame | Packet:
        while True:
            if self._decoded:
                return self._decoded.popleft()
            if self.readyState != "live":
                raise MediaStreamError
            item = await self._queue.get()
            if item is _END:
                raise MediaStreamError
            if isinstance(item, EncodedFrame):
                timestamp = self._rebase(item)
                if self.send_mime is None or item.mime == self.send_mime:
                    packet = Packet(item.data)
                    packet.pts = timestamp
                    packet.time_base = fractions.Fraction(1, item.clock_rate)
                    self.frames_out += 1
                    return packet
                self._transcode(item, timestamp)
                continue
            assert isinstance(item, Frame)
            self.frames_out += 1
            return item

    def _rebase(self, item: EncodedFrame) -> int:
        if self._offset is None:
            start = 0 if self._last_out is None else self._last_out + _STEP.get(self.kind, 1)
            self._offset = start - item.timestamp
        out = item.timestamp + self._offset
        if self._last_out is not None and out <= self._last_out:
            out = self._last_out + 1
        self._last_out = out
        return out

    def _transcode(self, item: EncodedFrame, timestamp: int) -> None:
        if self._decoder is None or self._decoder_mime != item.mime:
            name = _DECODERS.get(item.mime)
            if name is None:
                _LOGGER.warning("%r: cannot decode %s; dropping", self, item.mime)
                return
            self._decoder = av.CodecContext.create(name, "r")
            self._decoder_mime = item.mime
            _LOGGER.info("%r: %s leg re-encoded as %s", self, item.mime, self.send_mime)
        packet = Packet(item.data)
        packet.pts = timestamp
        packet.time_base = fractions.Fraction(1, item.clock_rate)
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            _LOGGER.debug("%r: decode failed: %s", self, exc)
            if self._source is not None:
                self._source.request_keyframe("transcoding leg lost a frame")
            return
        for frame in frames:
            frame.pts = timestamp
            frame.time_base = fractions.Fraction(1, item.clock_rate)
            self._counters.frames_transcoded += 1
            self._decoded.append(frame)

    def stop(self) -> None:
        if self.readyState == "live":
            self.unbind()
            self._queue.put_nowait(_END)
        super().stop()
