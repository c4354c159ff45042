"""The frames of a live challenge's window: a bounded sample of the subject's decoded video.

Like a snapshot, a sink on the published track asks for a keyframe and starts there; unlike
a snapshot it keeps every frame for ``duration_s`` of *media time* (the RTP timestamps, not
the wall clock: a loaded server that receives the window late still judges the same
frames) and then decodes them in a worker thread, keeping about ``fps`` frames a second,
at most ``max_frames``. Forwarding stays untouched; only this sink decodes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from av.video.frame import VideoFrame
from numpy.typing import NDArray

from media.bitstream import H264, EncodedFrame
from media.errors import NoMediaError
from media.forwarder import MediaItem, TrackForwarder

_LOGGER = logging.getLogger(__name__)
MAX_ITEMS = 900
"""Frames held at most while the window fills (30 s at 30 fps: the memory bound)."""


@dataclass(frozen=True, slots=True)
class WindowFrame:
    """One kept frame: its media time from the window's start and its RGB picture."""

    at_s: float
    rgb: NDArray[np.uint8]


def _seconds(item: MediaItem) -> float | None:
    if isinstance(item, EncodedFrame):
        return item.timestamp / item.clock_rate if item.clock_rate else None
    if item.pts is None or item.time_base is None:
        return None
    return float(item.pts * item.time_base)


class _Window:
    """Sink that keeps the items of ``duration_s`` of media from the first keyframe on."""

    def __init__(self, duration_s: float, done: asyncio.Future[None]) -> None:
        self.duration_s = duration_s
        self.items: list[MediaItem] = []
        self._start: float | None = None
        self._done = done

    def push(self, item: MediaItem) -> None:
        if self._done.done() or getattr(item, "kind", "video") != "video":
            return
        if not self.items and isinstance(item, EncodedFrame) and not item.keyframe:
            return
        at = _seconds(item)
        if at is None:
            return
        if self._start is None:
            self._start = at
        if at - self._start >= self.duration_s or len(self.items) >= MAX_ITEMS:
            self._done.set_result(None)
            return
        self.items.append(item)

    def source_ended(self, forwarder: TrackForwarder) -> None:
        if not self._done.done():
            self._done.set_result(None)


def decode_window(items: list[MediaItem], *, fps: float, max_frames: int) -> list[WindowFrame]:
    """Decode in order (inter frames need their predecessors) and keep one frame per
    ``1/fps`` of media time; runs in a worker thread."""
    out: list[WindowFrame] = []
    decoder: Any = None
    start: float | None = None
    next_at = 0.0
    for item in items:
        at = _seconds(item)
        if at is None:
            continue
        if start is None:
            start = at
        frames: list[Any]
        if isinstance(item, EncodedFrame):
            if decoder is None:
                decoder = av.CodecContext.create("h264" if item.mime == H264 else "libvpx", "r")
            try:
                frames = list(decoder.decode(av.Packet(item.data)))
            except av.error.FFmpegError:
                _LOGGER.debug("a window frame did not decode")
                continue
        else:
            frames = [item]
        rel = at - start
        if rel + 1e-6 < next_at:
            continue
        for frame in frames[:1]:
            if isinstance(frame, VideoFrame):
                rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                out.append(WindowFrame(round(rel, 3), rgb))
                next_at = rel + 1 / fps
        if len(out) >= max_frames:
            break
    return out


async def sample_window(
    forwarder: TrackForwarder,
    *,
    duration_s: float,
    fps: float,
    max_frames: int,
    timeout_s: float,
) -> list[WindowFrame]:
    """The kept frames of the next ``duration_s`` of the track's video.

    ``timeout_s`` bounds the wait beyond the window itself (no keyframe, frames stalled):
    then what has arrived is used, possibly nothing.
    """
    if forwarder.kind != "video":
        raise NoMediaError("a challenge window is of a video track")
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    sink = _Window(duration_s, done)
    forwarder.add_sink(sink)
    try:
        await asyncio.wait_for(asyncio.shield(done), duration_s + timeout_s)
    except TimeoutError:
        _LOGGER.warning(
            "challenge window of %s incomplete: %d frames", forwarder.id, len(sink.items)
        )
    finally:
        forwarder.remove_sink(sink)
    items = list(sink.items)
    return await asyncio.to_thread(decode_window, items, fps=fps, max_frames=max_frames)
