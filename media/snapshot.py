"""Snapshots: the next keyframe of a published video track, decoded once to JPEG.

Only the snapshot decodes; forwarding stays untouched. The forwarder asks the publisher for
a keyframe when the snapshot's sink attaches, so a snapshot arrives within a round trip
plus one frame instead of waiting for the encoder's next periodic keyframe (which aiortc
sends every 3000 frames).
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
from av.video.frame import VideoFrame

from media.bitstream import H264, EncodedFrame
from media.errors import NoMediaError, SnapshotTimeoutError
from media.forwarder import MediaItem, TrackForwarder
from media.store import SnapshotInfo

_LOGGER = logging.getLogger(__name__)


class _NextPicture:
    """Sink that resolves with the first item a decoder can start from."""

    def __init__(self, future: asyncio.Future[MediaItem]) -> None:
        self._future = future

    def push(self, item: MediaItem) -> None:
        if self._future.done():
            return
        if isinstance(item, EncodedFrame) and not item.keyframe:
            return
        self._future.set_result(item)

    def source_ended(self, forwarder: TrackForwarder) -> None:
        if not self._future.done():
            self._future.set_exception(NoMediaError("the track ended before a keyframe"))


@dataclass(frozen=True, slots=True)
class Jpeg:
    data: bytes
    width: int
    height: int


def encode_jpeg(item: MediaItem) -> Jpeg:
    """Decode (if needed) and encode as baseline JPEG; runs in a worker thread."""
    frame: Any
    if isinstance(item, EncodedFrame):
        decoder: Any = av.CodecContext.create("h264" if item.mime == H264 else "libvpx", "r")
        frames = decoder.decode(av.Packet(item.data))
        if not frames:
            raise NoMediaError("the keyframe did not decode")
        frame = frames[0]
    else:
        frame = item
    if not isinstance(frame, VideoFrame):
        raise NoMediaError("not a video frame")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 25)
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(picture))
    data += b"".join(bytes(p) for p in encoder.encode(None))
    return Jpeg(data, frame.width, frame.height)


async def take_snapshot(
    forwarder: TrackForwarder,
    *,
    directory: Path,
    room_id: str,
    timeout_s: float,
    now: Callable[[], datetime],
) -> SnapshotInfo:
    if forwarder.kind != "video":
        raise NoMediaError("snapshots are of video tracks")
    future: asyncio.Future[MediaItem] = asyncio.get_running_loop().create_future()
    sink = _NextPicture(future)
    forwarder.add_sink(sink)
    try:
        item = await asyncio.wait_for(future, timeout_s)
    except TimeoutError:
        raise SnapshotTimeoutError(f"no keyframe within {timeout_s} s") from None
    finally:
        forwarder.remove_sink(sink)
    jpeg = await asyncio.to_thread(encode_jpeg, item)
    snapshot_id = uuid.uuid4().hex
    path = directory / room_id / f"{snapshot_id}.jpg"
    await asyncio.to_thread(_write, path, jpeg.data)
    info = SnapshotInfo(
        id=snapshot_id,
        room_id=room_id,
        participant_id=forwarder.publisher_id,
        track_kind=forwarder.kind,
        path=path,
        sha256=hashlib.sha256(jpeg.data).hexdigest(),
        width=jpeg.width,
        height=jpeg.height,
        taken_at=now(),
    )
    _LOGGER.info("snapshot %s of %s (%dx%d)", snapshot_id, forwarder.id, jpeg.width, jpeg.height)
    return info


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
