"""Fan-out of one published track to its sinks (subscriber slots, recorder, snapshots).

In ``forward`` mode the source track yields :class:`~media.bitstream.EncodedFrame`s (the
receiver is tapped by :mod:`media.aiortc_adapter`) and nothing is decoded. In ``relay`` mode
(the fallback when the adapter self-test fails) the source yields decoded frames and every
subscriber's sender re-encodes them — what aiortc's ``MediaRelay`` does, at its CPU cost.

Keyframe requests to the publisher go through one kept task per video forwarder, so
requests from many subscribers, the recorder and snapshots are merged and throttled. A
request stands until a keyframe arrives: the task repeats the PLI every
``pli_min_interval_s`` meanwhile, because a PLI (or the keyframe it asks for) can be lost,
and a subscriber gated on a keyframe that nobody asks for again would stay black forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from enum import StrEnum
from typing import Protocol, cast

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

from media import aiortc_adapter
from media.bitstream import EncodedFrame
from media.metrics import MediaCounters

_LOGGER = logging.getLogger(__name__)

MediaItem = EncodedFrame | Frame
_RETRY_S = 0.2
# A subscriber's REMB older than this no longer limits the publisher (it left, or its
# receiver stopped estimating); the combined REMB goes out this often.
_ESTIMATE_FRESH_S = 5.0
_REMB_INTERVAL_S = 1.0
# Never ask a publisher for less video than this: below it a camera picture is useless and
# a browser's encoder would drop to a few frames per second. Audio is not in the REMB.
_MIN_VIDEO_BPS = 150_000


class ForwardingMode(StrEnum):
    FORWARD = "forward"
    RELAY = "relay"


class Sink(Protocol):
    """Receives every item of a forwarder; ``push`` runs on the loop and must not block."""

    def push(self, item: MediaItem) -> None: ...

    def source_ended(self, forwarder: TrackForwarder) -> None: ...


class TrackForwarder:
    def __init__(
        self,
        *,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver,
        publisher_id: str,
        codec: str | None,
        mode: ForwardingMode,
        counters: MediaCounters,
        pli_min_interval_s: float,
        max_video_bps: int | None = None,
    ) -> None:
        self.kind: str = track.kind
        self.publisher_id = publisher_id
        self.codec = codec
        self.mode = mode
        self.id = f"{publisher_id}:{track.id}"
        self._track = track
        self._receiver = receiver
        self._counters = counters
        self._pli_interval = pli_min_interval_s
        self._sinks: list[Sink] = []
        self._keyframe_wanted = asyncio.Event()
        self._last_pli = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = False
        self._closed = False
        # Frames received from the publisher (the quality meter's frame rate).
        self.frames = 0
        # Staff muted the publisher (``Room.mute``): subscriber slots drop this audio, the
        # recorder still gets it (the recording is evidence of what was said).
        self.muted = False
        # Bitrate control (video): the room's cap, each subscriber's latest REMB and the
        # server's own estimate of the publisher's uplink, each with its arrival time.
        self.max_video_bps = max_video_bps
        self._estimates: dict[int, tuple[int, float]] = {}
        self._own_estimate: tuple[int, float] | None = None
        # The last REMB the publisher was sent (bit/s); None before the first.
        self.target_bps: int | None = None

    def __repr__(self) -> str:
        return f"TrackForwarder({self.id}, {self.kind}, {self.mode}, sinks={len(self._sinks)})"

    @property
    def ended(self) -> bool:
        return self._ended

    def start(self) -> None:
        if self._tasks or self._closed:
            return
        self._tasks.append(asyncio.create_task(self._run(), name=f"forward {self.id}"))
        if self.kind == "video" and self.mode is ForwardingMode.FORWARD:
            self._tasks.append(
                asyncio.create_task(self._keyframe_requests(), name=f"pli {self.id}")
            )
            aiortc_adapter.cap_bitrate_estimates(self._receiver, self._cap, self._own)
            self._tasks.append(asyncio.create_task(self._bitrate(), name=f"remb {self.id}"))

    def add_sink(self, sink: Sink) -> None:
        """Attach a sink; a new video sink needs a keyframe before it can use anything."""
        if sink in self._sinks:
            return
        if self._ended:
            sink.source_ended(self)
            return
        self._sinks.append(sink)
        self.request_keyframe("new sink")

    def remove_sink(self, sink: Sink) -> None:
        with contextlib.suppress(ValueError):
            self._sinks.remove(sink)
        self._estimates.pop(id(sink), None)

    # Bitrate control ------------------------------------------------------------------

    def subscriber_estimate(self, sink: Sink, bitrate: int) -> None:
        """A subscriber's REMB for what this forwarder sends it (bridged by its slot)."""
        if sink in self._sinks:
            self._estimates[id(sink)] = (bitrate, time.monotonic())

    def _own(self, bitrate: int) -> None:
        self._own_estimate = (bitrate, time.monotonic())

    def _cap(self) -> int | None:
        """The most the publisher may send: the weakest fresh subscriber, the room's cap."""
        fresh = time.monotonic() - _ESTIMATE_FRESH_S
        limits = [bps for bps, at in self._estimates.values() if at >= fresh]
        if self.max_video_bps:
            limits.append(self.max_video_bps)
        if not limits:
            return None
        return max(min(limits), _MIN_VIDEO_BPS)

    def target(self) -> int | None:
        """What to tell the publisher: the cap, or the server's own estimate if lower."""
        cap = self._cap()
        if cap is None:
            return None
        own = self._own_estimate
        if own is not None and own[1] >= time.monotonic() - _ESTIMATE_FRESH_S:
            return min(cap, own[0])
        return cap

    async def _bitrate(self) -> None:
        """Kept task: send the publisher the combined REMB every interval while a cap is
        in force (aiortc's own REMBs are lowered to the cap as they go out)."""
        while True:
            await asyncio.sleep(_REMB_INTERVAL_S)
            target = self.target()
            if target is None:
                continue
            if await aiortc_adapter.send_bitrate_estimate(self._receiver, target):
                if target != self.target_bps:
                    _LOGGER.debug("%r: publisher asked for %d bit/s", self, target)
                self.target_bps = target

    def request_keyframe(self, reason: str) -> None:
        if self.kind != "video" or self.mode is not ForwardingMode.FORWARD or self._ended:
            return
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("%r keyframe wanted: %s", self, reason)
        self._keyframe_wanted.set()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    item = cast(MediaItem, await self._track.recv())
                except MediaStreamError:
                    break
                self.frames += 1
                if isinstance(item, EncodedFrame):
                    self._counters.frames_in += 1
                    if item.keyframe and item.kind == "video":
                        self._counters.keyframes_in += 1
                        # Any keyframe satisfies every request made before it: every gated
                        # sink takes it.
                        self._keyframe_wanted.clear()
                    elif item.discontinuity and item.kind == "video":
                        # Packets were lost for good: sinks re-gate (see SlotTrack.push).
                        self._counters.upstream_losses += 1
                        self.request_keyframe("frames lost upstream")
                for sink in tuple(self._sinks):
                    try:
                        sink.push(item)
                    except Exception:
                        _LOGGER.exception("%r: sink %r failed; detaching it", self, sink)
                        self.remove_sink(sink)
        finally:
            self._end()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            try:
                sink.source_ended(self)
            except Exception:
                _LOGGER.exception("%r: sink %r failed on end", self, sink)

    async def _keyframe_requests(self) -> None:
        """Send a PLI while a keyframe is wanted, at most one per interval.

        The wish is cleared only by a keyframe arriving (in ``_run``), never by sending the
        PLI, so a lost PLI or a lost keyframe is asked for again.
        """
        while True:
            await self._keyframe_wanted.wait()
            delay = self._last_pli + self._pli_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if await aiortc_adapter.request_keyframe(self._receiver):
                self._last_pli = time.monotonic()
                self._counters.upstream_keyframe_requests += 1
            else:
                # Nothing received yet: the publisher's first frame is a keyframe anyway,
                # but keep asking in case it started before we listened.
                await asyncio.sleep(_RETRY_S)

    async def close(self) -> None:
        """Stop reading and tell every sink; idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        # gather, not ``suppress(CancelledError)`` around each await: that would also
        # swallow a cancellation of the caller (a room's reaper being stopped mid-removal
        # then ran on forever and the room's close hung).
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._end()
        self._track.stop()
