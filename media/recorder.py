"""Evidence recording: the forwarded packets of one participant muxed into WebM/Matroska.

Nothing is re-encoded in ``forward`` mode: VP8 and Opus frames go into the file as they
arrived. Clusters are closed every ``recording_cluster_ms`` and written straight through
(``flush_packets``) so a process killed mid-call leaves a file that plays up to about that
much before the kill; on a clean close the muxer adds cues and the file's size, duration and
SHA-256 go to the :class:`~media.store.RecordingStore`.

One file per publishing participant: Matroska must declare every track before the first
cluster, and parties join and rejoin at different times. Every file carries its room's
``room_id``; its timeline starts (pts 0) at the participant's first keyframe.

In ``relay`` mode (the fallback) the recorder receives decoded frames and encodes them.
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import av
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from media.bitstream import H264, OPUS, VP8, EncodedFrame, h264_parameter_sets, vp8_dimensions
from media.forwarder import ForwardingMode, MediaItem, TrackForwarder

_LOGGER = logging.getLogger(__name__)

_MS = fractions.Fraction(1, 1000)
_OPUS_RATE = 48000
# RFC 7845 §5.1 identification header: version 1, 2 channels, 312 samples pre-skip,
# 48 kHz, 0 dB gain, channel mapping family 0. Matroska wants it as Opus codec private.
_OPUS_HEAD = (
    b"OpusHead"
    + bytes([1, 2])
    + (312).to_bytes(2, "little")
    + _OPUS_RATE.to_bytes(4, "little")
    + bytes([0, 0, 0])
)
_DEFAULT_SIZE = (640, 480)


class RecordingState(StrEnum):
    WAITING = "waiting"
    RECORDING = "recording"
    FINISHED = "finished"
    EMPTY = "empty"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    id: str
    room_id: str
    participant_id: str | None
    path: Path
    started_at: datetime
    state: RecordingState
    ended_at: datetime | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    sha256: str | None = None


def recording_to_json(info: RecordingInfo) -> dict[str, Any]:
    """A recording's facts as plain JSON (an owner instance answers a forwarded ``end``)."""
    return {
        "id": info.id,
        "room_id": info.room_id,
        "participant_id": info.participant_id,
        "path": str(info.path),
        "started_at": info.started_at.isoformat(),
        "state": str(info.state),
        "ended_at": info.ended_at.isoformat() if info.ended_at else None,
        "size_bytes": info.size_bytes,
        "duration_s": info.duration_s,
        "sha256": info.sha256,
    }


def recording_from_json(data: dict[str, Any]) -> RecordingInfo:
    ended = data.get("ended_at")
    return RecordingInfo(
        id=str(data["id"]),
        room_id=str(data["room_id"]),
        participant_id=data.get("participant_id"),
        path=Path(data["path"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        state=RecordingState(data["state"]),
        ended_at=datetime.fromisoformat(ended) if ended else None,
        size_bytes=data.get("size_bytes"),
        duration_s=data.get("duration_s"),
        sha256=data.get("sha256"),
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_extension(codecs: list[str | None], mode: ForwardingMode) -> str:
    """WebM when everything is VP8/Opus (always so when the recorder encodes itself)."""
    if mode is ForwardingMode.RELAY:
        return ".webm"
    return ".webm" if all(c in (VP8, OPUS, None) for c in codecs) else ".mkv"


def probe_duration(path: Path) -> float:
    """Seconds of media a (possibly truncated) recording holds, read packet by packet."""
    last = 0.0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                last = max(last, float(packet.pts * packet.time_base))
    return last


class _TrackSink:
    """A forwarder's sink for one track of the recording."""

    def __init__(self, recording: ParticipantRecording, forwarder: TrackForwarder) -> None:
        self.recording = recording
        self.forwarder = forwarder
        self.kind = forwarder.kind
        self.encodes = forwarder.mode is ForwardingMode.RELAY
        self.stream: Any = None
        self.first_arrival: float | None = None
        self.first_ts: int | None = None
        self.last_pts = -1
        self.next_audio_pts = 0
        # After a rejoin the new publication must start on a keyframe.
        self.need_keyframe = False

    def push(self, item: MediaItem) -> None:
        self.recording._on_item(self, item)

    def source_ended(self, forwarder: TrackForwarder) -> None:
        _LOGGER.debug("%r ended", self)

    def __repr__(self) -> str:
        return f"_TrackSink({self.forwarder.id})"


class ParticipantRecording:
    def __init__(
        self,
        *,
        info: RecordingInfo,
        forwarders: list[TrackForwarder],
        cluster_ms: int,
        now: Callable[[], datetime],
    ) -> None:
        self.info = info
        self._now = now
        self._cluster_ms = cluster_ms
        self._sinks = [_TrackSink(self, f) for f in forwarders]
        self._container: Any = None
        self._start: float | None = None
        self._closed = False
        self.packets_written = 0
        # (start_s, end_s) on the file's timeline where the participant was away.
        self.gaps: list[tuple[float, float]] = []
        self._away_since: float | None = None

    def __repr__(self) -> str:
        return f"ParticipantRecording({self.info.id}, {self.info.state})"

    @property
    def state(self) -> RecordingState:
        return self.info.state

    @property
    def recorded_s(self) -> float:
        """Media handed to the muxer so far (seconds from the first keyframe)."""
        return max((s.last_pts for s in self._sinks), default=0) / 1000

    def _set_state(self, state: RecordingState, **changes: Any) -> None:
        _LOGGER.debug("%r state %s -> %s", self, self.info.state, state)
        self.info = replace(self.info, state=state, **changes)

    def start(self) -> None:
        for sink in self._sinks:
            sink.forwarder.add_sink(sink)

    def suspend(self) -> None:
        """The participant dropped: stop taking media, keep the file open for a rejoin."""
        for sink in self._sinks:
            sink.forwarder.remove_sink(sink)
        if self._away_since is None:
            self._away_since = self.recorded_s

    def reattach(self, forwarders: list[TrackForwarder]) -> bool:
        """Continue this file with a rejoined participant's new publications.

        The new streams' first frames are placed at their arrival time on the file's
        timeline, so the gap is kept as a gap and the file plays across it. ``False`` (and
        nothing changed) when the new publications do not fit the declared tracks — the
        caller then finishes this file and starts a linked one.
        """
        if self._closed:
            return False
        by_kind = {f.kind: f for f in forwarders}
        if set(by_kind) != {s.kind for s in self._sinks} or any(
            by_kind[s.kind].codec != s.forwarder.codec for s in self._sinks
        ):
            return False
        for sink in self._sinks:
            sink.forwarder.remove_sink(sink)
            sink.forwarder = by_kind[sink.kind]
            sink.first_ts = sink.first_arrival = None
            sink.need_keyframe = sink.kind == "video" and self._container is not None
        for sink in self._sinks:
            sink.forwarder.add_sink(sink)
        return True

    # Opening ----------------------------------------------------------------------------

    def _waits_for(self, sink: _TrackSink, item: MediaItem) -> bool:
        """Open the file on the first video keyframe (or the first audio if audio only)."""
        if sink.kind != "video" and any(s.kind == "video" for s in self._sinks):
            return True
        return isinstance(item, EncodedFrame) and not item.keyframe

    def _open(self, trigger: _TrackSink, item: MediaItem) -> None:
        fmt = "webm" if self.info.path.suffix == ".webm" else "matroska"
        self.info.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self.info.path),
            "w",
            format=fmt,
            options={"cluster_time_limit": str(self._cluster_ms), "flush_packets": "1"},
        )
        try:
            for sink in self._sinks:
                first = item if sink is trigger else None
                sink.stream = (
                    self._add_audio(container, sink)
                    if sink.kind == "audio"
                    else self._add_video(container, sink, first)
                )
        except Exception:
            container.close()
            raise
        self._container = container
        self._start = item.arrival if isinstance(item, EncodedFrame) else time.monotonic()
        self._set_state(RecordingState.RECORDING)
        _LOGGER.info("%r: recording to %s", self, self.info.path)

    @staticmethod
    def _add_audio(container: Any, sink: _TrackSink) -> Any:
        if sink.encodes:
            stream = container.add_stream("libopus", rate=_OPUS_RATE)
            stream.codec_context.format = "s16"
        else:
            stream = container.add_stream("opus", rate=_OPUS_RATE)
            stream.codec_context.extradata = _OPUS_HEAD
        stream.codec_context.layout = "stereo"
        stream.time_base = _MS
        return stream

    @staticmethod
    def _add_video(container: Any, sink: _TrackSink, first: MediaItem | None) -> Any:
        if sink.encodes:
            stream = container.add_stream("libvpx", rate=30)
            width, height = (
                (first.width, first.height) if isinstance(first, VideoFrame) else _DEFAULT_SIZE
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.bit_rate = 1_000_000
            stream.codec_context.time_base = _MS
            stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
            return stream
        encoded = first if isinstance(first, EncodedFrame) else None
        mime = encoded.mime if encoded else sink.forwarder.codec
        if mime == H264:
            stream = container.add_stream("h264")
            if encoded is not None:
                stream.codec_context.extradata = h264_parameter_sets(encoded.data)
            size = _decoded_size("h264", encoded.data) if encoded else None
        else:
            stream = container.add_stream("vp8")
            size = vp8_dimensions(encoded.data) if encoded else None
        stream.width, stream.height = size or _DEFAULT_SIZE
        stream.time_base = _MS
        return stream

    # Muxing -----------------------------------------------------------------------------

    def _on_item(self, sink: _TrackSink, item: MediaItem) -> None:
        if self._closed or self.info.state not in (
            RecordingState.WAITING,
            RecordingState.RECORDING,
        ):
            return
        if self._container is None:
            if self._waits_for(sink, item):
                return
            try:
                self._open(sink, item)
            except Exception:
                _LOGGER.exception("%r: cannot open %s", self, self.info.path)
                self._set_state(RecordingState.FAILED)
                return
        if sink.need_keyframe:
            if isinstance(item, EncodedFrame) and not item.keyframe:
                return
            sink.need_keyframe = False
        try:
            if isinstance(item, EncodedFrame):
                self._mux_encoded(sink, item)
            else:
                self._mux_decoded(sink, item)
        except (av.FFmpegError, ValueError) as exc:
            _LOGGER.warning("%r: dropped a %s packet: %s", self, sink.kind, exc)

    def _mux_encoded(self, sink: _TrackSink, item: EncodedFrame) -> None:
        assert self._start is not None
        if sink.first_ts is None or sink.first_arrival is None:
            sink.first_ts, sink.first_arrival = item.timestamp, item.arrival
        offset_ms = (sink.first_arrival - self._start) * 1000
        pts = round(offset_ms + (item.timestamp - sink.first_ts) * 1000 / item.clock_rate)
        pts = max(pts, sink.last_pts + 1)
        if self._away_since is not None:
            self.gaps.append((round(self._away_since, 3), round(pts / 1000, 3)))
            self._away_since = None
        sink.last_pts = pts
        packet = av.Packet(item.data)
        packet.pts = packet.dts = pts
        packet.time_base = _MS
        packet.stream = sink.stream
        packet.is_keyframe = item.keyframe
        self._container.mux(packet)
        self.packets_written += 1

    def _mux_decoded(self, sink: _TrackSink, frame: Any) -> None:
        assert self._start is not None
        if isinstance(frame, AudioFrame):
            frame.pts = sink.next_audio_pts
            frame.time_base = fractions.Fraction(1, _OPUS_RATE)
            sink.next_audio_pts += frame.samples
            sink.last_pts = sink.next_audio_pts * 1000 // _OPUS_RATE
        elif isinstance(frame, VideoFrame):
            pts = max(round((time.monotonic() - self._start) * 1000), sink.last_pts + 1)
            sink.last_pts = pts
            frame = frame.reformat(
                width=sink.stream.width, height=sink.stream.height, format="yuv420p"
            )
            frame.pts = pts
            frame.time_base = _MS
        for packet in sink.stream.encode(frame):
            self._container.mux(packet)
            self.packets_written += 1

    # Close ------------------------------------------------------------------------------

    async def close(self) -> RecordingInfo:
        """Finish the file and measure it; idempotent."""
        if self._closed:
            return self.info
        self._closed = True
        for sink in self._sinks:
            sink.forwarder.remove_sink(sink)
        container, self._container = self._container, None
        ended = self._now()
        if container is None:
            if self.info.state is RecordingState.WAITING:
                self._set_state(RecordingState.EMPTY, ended_at=ended)
            return self.info
        duration = max((s.last_pts for s in self._sinks), default=0) / 1000
        try:
            for sink in self._sinks:
                if sink.encodes and sink.stream is not None:
                    for packet in sink.stream.encode(None):
                        container.mux(packet)
            container.close()
        except Exception:
            _LOGGER.exception("%r: closing the muxer failed", self)
        path = self.info.path
        size = path.stat().st_size
        digest = await asyncio.to_thread(sha256_file, path)
        self._set_state(
            RecordingState.FINISHED,
            ended_at=ended,
            size_bytes=size,
            duration_s=round(max(duration, 0.0), 3),
            sha256=digest,
        )
        _LOGGER.info("%r: %s bytes, %.1f s", self, size, duration)
        return self.info


def _decoded_size(codec: str, data: bytes) -> tuple[int, int] | None:
    decoder: Any = av.CodecContext.create(codec, "r")
    for frame in decoder.decode(av.Packet(data)):
        return frame.width, frame.height
    return None
