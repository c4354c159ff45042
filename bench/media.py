"""Media benchmark: encoded forwarding against MediaRelay, rooms per process, added latency.

The server (a :class:`media.manager.RoomManager` behind a tiny JSON-lines TCP signaling
socket) runs in its own process and its CPU is measured with psutil; the synthetic peers run
in this process and stay cheap: publishers replay a pre-encoded VP8/Opus WebM file as packets
(``MediaPlayer(decode=False)``; the file is generated once with PyAV and cached), subscribers
tap their receivers (no decoding) and count frames, decoding only the first frames of each
stream to check them. Ratios compare against baselines measured in the same run.

Keys (CPU in % of one core of the server process):

* ``relay_cpu_pct_1/3``, ``forward_cpu_pct_1/3``: one 640x480 publisher, 1 or 3 viewers;
* ``forward_vs_relay_3``: relay CPU / forward CPU with 3 viewers (target >= 8);
* ``rooms_per_process``: rooms of two parties + a monitor + recording that one server
  process carries with every video stream received at >= 29 fps (target >= 6);
* ``added_latency_p95_ms``: frame arrival through the server minus arrival of the same frame
  on a direct aiortc-to-aiortc connection from the same publisher (target <= 40);
* ``recording_overhead_pct``: extra server CPU per recorded room (% of one core).

Usage: ``python bench/media.py [--quick]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import hashlib
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaPlayer, MediaRelay  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

from media import aiortc_adapter, codecs  # noqa: E402
from media.bitstream import EncodedFrame  # noqa: E402

_LOGGER = logging.getLogger("bench.media")

WIDTH, HEIGHT, FPS = 640, 480, 30
GOP = 60  # a replayed file cannot answer a PLI: keyframes every 2 s let new viewers start
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "command-center"
SAMPLE_DECODE = 30


# Media file ------------------------------------------------------------------------------


def ensure_media_file(seconds: int) -> Path:
    """A 640x480@30 VP8 + Opus WebM with a moving texture, generated once and cached."""
    path = CACHE / f"bench-media-{WIDTH}x{HEIGHT}-{seconds}s-gop{GOP}.webm"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rng = np.random.default_rng(7)
    small = rng.integers(30, 220, size=(HEIGHT // 8, WIDTH // 4), dtype=np.uint8)
    texture = np.kron(small, np.ones((8, 8), dtype=np.uint8))
    uv = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
    with av.open(str(tmp), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = 900_000
        video.gop_size = GOP
        video.codec_context.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
        }
        audio = out.add_stream("libopus", rate=48000)
        audio.codec_context.layout = "stereo"
        audio.codec_context.format = "s16"
        samples = 0
        tone = (np.sin(np.arange(960) * 2 * math.pi * 440 / 48000) * 3000).astype(np.int16)
        for n in range(seconds * FPS):
            off = (n * 4) % WIDTH
            y = np.ascontiguousarray(texture[:, off : off + WIDTH])
            sx = int((math.sin(n / 20) * 0.5 + 0.5) * (WIDTH - 80))
            y[200:280, sx : sx + 80] = 240
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, uv]), format="yuv420p")
            frame.pts, frame.time_base = n, fractions.Fraction(1, FPS)
            for packet in video.encode(frame):
                out.mux(packet)
            while samples < (n + 1) * 48000 // FPS:
                chunk = av.AudioFrame.from_ndarray(
                    np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
                )
                chunk.sample_rate, chunk.pts = 48000, samples
                chunk.time_base = fractions.Fraction(1, 48000)
                samples += 960
                for packet in audio.encode(chunk):
                    out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    tmp.rename(path)
    return path


# Server process --------------------------------------------------------------------------


async def serve(mode: str, port: int) -> None:
    from media.manager import RoomManager
    from media.settings import ForwardingPreference, MediaSettings

    workdir = Path(tempfile.mkdtemp(prefix="media-bench-"))
    settings = MediaSettings(
        recordings_dir=workdir / "recordings",
        snapshots_dir=workdir / "snapshots",
        forwarding=ForwardingPreference.RELAY if mode == "relay" else ForwardingPreference.AUTO,
    )
    manager = RoomManager(settings)
    await manager.start()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = json.loads(await reader.readline())
        op = msg["op"]
        result: dict[str, Any]
        if op == "create_room":
            room = await manager.create_room(
                msg["kind"], allowed=msg["allowed"], record=msg["record"]
            )
            result = {"room": room}
        elif op == "join":
            joined = await manager.join(msg["room"], msg["role"], msg["principal"], _ignore)
            result = {"participant_id": joined.participant_id}
        elif op == "offer":
            result = {"sdp": await manager.offer(msg["participant_id"], msg["sdp"])}
        elif op == "close_room":
            await manager.close_room(msg["room"])
            result = {}
        else:
            result = {"metrics": manager.metrics(), "mode": str(manager.mode)}
        writer.write((json.dumps(result) + "\n").encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(json.dumps({"ready": True, "pid": os.getpid(), "mode": str(manager.mode)}), flush=True)
    async with server:
        with contextlib.suppress(asyncio.CancelledError):
            await server.serve_forever()
    await manager.close_all()


def _ignore(event: dict[str, Any]) -> None:
    """Peers offer enough receiving m-lines up front, so no server offer needs an answer."""


class ServerProcess:
    def __init__(self, mode: str, port: int) -> None:
        self.mode, self.port = mode, port
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            self.mode,
            "--port",
            str(self.port),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready = json.loads(await self.proc.stdout.readline())
        if self.mode == "forward" and ready["mode"] != "forward":
            raise RuntimeError("the server fell back to relay: adapter self-test failed")
        self.ps = psutil.Process(ready["pid"])

    async def request(self, **msg: Any) -> dict[str, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write((json.dumps(msg) + "\n").encode())
        await writer.drain()
        line = await reader.readline()
        writer.close()
        return dict(json.loads(line))

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


# Peers -----------------------------------------------------------------------------------


@dataclass
class StreamStats:
    kind: str
    arrivals: list[float] = field(default_factory=list)
    by_hash: dict[bytes, float] = field(default_factory=dict)
    decoded: int = 0
    decode_errors: int = 0
    keep_hashes: bool = False
    _decoder: Any = None
    _keyed: bool = False

    def add(self, frame: EncodedFrame) -> None:
        now = time.monotonic()
        self.arrivals.append(now)
        if self.kind != "video":
            return
        if self.keep_hashes:
            self.by_hash[hashlib.blake2b(frame.data, digest_size=8).digest()] = now
        if self.decoded < SAMPLE_DECODE:
            self._keyed = self._keyed or frame.keyframe
            if self._keyed:
                if self._decoder is None:
                    self._decoder = av.CodecContext.create("libvpx", "r")
                try:
                    self._decoder.decode(av.Packet(frame.data))
                    self.decoded += 1
                except av.FFmpegError:
                    self.decode_errors += 1

    def fps(self, start: float, end: float) -> float:
        window = [t for t in self.arrivals if start <= t <= end]
        if len(window) < 2:
            return 0.0
        return (len(window) - 1) / (window[-1] - window[0])


class Peer:
    """A client peer: sends replayed packets and/or receives with a tapped receiver."""

    def __init__(
        self, send: MediaPlayer | None, recv_pairs: int, keep_hashes: bool = False
    ) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.send = send
        self.recv_pairs = recv_pairs
        self.streams: list[StreamStats] = []
        self.keep_hashes = keep_hashes
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        aiortc_adapter.tap_receiver(transceiver.receiver)
        stats = StreamStats(track.kind, keep_hashes=self.keep_hashes)
        self.streams.append(stats)
        self._tasks.append(asyncio.create_task(_consume(track, stats)))

    def add_transceivers(self, video: Any = None, audio: Any = None) -> None:
        pairs = self.recv_pairs
        for track in (video, audio):
            if track is not None:
                direction = "sendrecv" if pairs else "sendonly"
                codecs.prefer(self.pc.addTransceiver(track, direction=direction))
        if video is not None:
            pairs -= 1
        for _ in range(max(pairs, 0)):
            for kind in ("video", "audio"):
                codecs.prefer(self.pc.addTransceiver(kind, direction="recvonly"))

    async def join_server(self, server: ServerProcess, room: str, role: str, name: str) -> None:
        joined = await server.request(op="join", room=room, role=role, principal=name)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await server.request(
            op="offer", participant_id=joined["participant_id"], sdp=self.pc.localDescription.sdp
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    def video_streams(self) -> list[StreamStats]:
        return [s for s in self.streams if s.kind == "video"]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


async def _consume(track: MediaStreamTrack, stats: StreamStats) -> None:
    while True:
        try:
            item = await track.recv()
        except MediaStreamError:
            return
        if isinstance(item, EncodedFrame):
            stats.add(item)


async def direct_pair(video: MediaStreamTrack) -> tuple[RTCPeerConnection, Peer]:
    """The baseline: the same publisher straight to an aiortc receiver, no server."""
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    codecs.prefer(sender.addTransceiver(video, direction="sendonly"))
    receiver = Peer(None, 1, keep_hashes=True)
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.pc.setRemoteDescription(sender.localDescription)
    await receiver.pc.setLocalDescription(await receiver.pc.createAnswer())
    await sender.setRemoteDescription(receiver.pc.localDescription)
    return sender, receiver


@dataclass
class Measure:
    cpu: float
    start: float
    end: float


async def measure(server: ServerProcess, warmup_s: float, window_s: float) -> Measure:
    assert server.ps is not None
    await asyncio.sleep(warmup_s)
    server.ps.cpu_percent(None)
    me = psutil.Process()
    me.cpu_percent(None)
    start = time.monotonic()
    await asyncio.sleep(window_s)
    end = time.monotonic()
    cpu = server.ps.cpu_percent(None)
    _LOGGER.info("server %.1f%%, peers %.1f%%", cpu, me.cpu_percent(None))
    return Measure(cpu, start, end)


# Phases ----------------------------------------------------------------------------------


async def viewers_phase(
    server: ServerProcess, media: Path, warmup_s: float, window_s: float, latency: bool
) -> tuple[float, float, float | None]:
    """One publisher, then 1 and 3 monitors: CPU for each, and the latency p95."""
    room = (
        await server.request(
            op="create_room",
            kind="call",
            allowed={"pub": ["party"], **{f"v{i}": ["monitor"] for i in range(3)}},
            record=False,
        )
    )["room"]
    player = MediaPlayer(str(media), decode=False)
    relay = MediaRelay()
    publisher = Peer(player, 0)
    publisher.add_transceivers(relay.subscribe(player.video), player.audio)
    await publisher.join_server(server, room, "party", "pub")
    direct_sender, direct = (
        await direct_pair(relay.subscribe(player.video)) if latency else (None, None)
    )
    viewers: list[Peer] = []
    results: list[float] = []
    added: list[float] = []
    try:
        for count in (1, 3):
            while len(viewers) < count:
                viewer = Peer(None, 1, keep_hashes=latency)
                viewer.add_transceivers()
                await viewer.join_server(server, room, "monitor", f"v{len(viewers)}")
                viewers.append(viewer)
            m = await measure(server, warmup_s, window_s)
            results.append(m.cpu)
        if direct is not None:
            (base,) = direct.video_streams()
            for viewer in viewers:
                for stream in viewer.video_streams():
                    added += [
                        t - base.by_hash[h] for h, t in stream.by_hash.items() if h in base.by_hash
                    ]
    finally:
        for peer in (*viewers, publisher, *([direct] if direct else [])):
            await peer.close()
        if direct_sender is not None:
            await direct_sender.close()
        player.video and player.video.stop()
        player.audio and player.audio.stop()
        await server.request(op="close_room", room=room)
    p95 = statistics.quantiles(added, n=20)[18] * 1000 if len(added) >= 20 else None
    return results[0], results[1], p95


@dataclass
class BenchRoom:
    room: str
    peers: list[Peer]
    players: list[MediaPlayer]

    async def close(self, server: ServerProcess) -> None:
        for peer in self.peers:
            await peer.close()
        for player in self.players:
            for track in (player.video, player.audio):
                if track is not None:
                    track.stop()
        await server.request(op="close_room", room=self.room)


async def open_room(server: ServerProcess, media: Path, n: int, record: bool) -> BenchRoom:
    allowed = {f"a{n}": ["party"], f"b{n}": ["party"], f"m{n}": ["monitor"]}
    room = (await server.request(op="create_room", kind="call", allowed=allowed, record=record))[
        "room"
    ]
    peers: list[Peer] = []
    players: list[MediaPlayer] = []
    for name in (f"a{n}", f"b{n}"):
        player = MediaPlayer(str(media), decode=False)
        players.append(player)
        party = Peer(player, 1)
        party.add_transceivers(player.video, player.audio)
        await party.join_server(server, room, "party", name)
        peers.append(party)
    monitor = Peer(None, 2)
    monitor.add_transceivers()
    await monitor.join_server(server, room, "monitor", f"m{n}")
    peers.append(monitor)
    return BenchRoom(room, peers, players)


def all_fps(rooms: list[BenchRoom], m: Measure) -> list[float]:
    return [s.fps(m.start, m.end) for r in rooms for p in r.peers for s in p.video_streams()]


async def rooms_phase(
    server: ServerProcess,
    media: Path,
    steps: list[int],
    base: int,
    warmup_s: float,
    window_s: float,
) -> tuple[int, float, dict[str, Any]]:
    """Recording overhead at ``base`` rooms, then add recorded rooms until a stream lags."""
    unrecorded = [await open_room(server, media, i, record=False) for i in range(base)]
    m = await measure(server, warmup_s, window_s)
    cpu_plain = m.cpu
    for room in unrecorded:
        await room.close(server)
    rooms: list[BenchRoom] = []
    passed, overhead = 0, 0.0
    detail: dict[str, Any] = {}
    try:
        for target in steps:
            while len(rooms) < target:
                rooms.append(await open_room(server, media, 100 + len(rooms), record=True))
            m = await measure(server, warmup_s, window_s)
            fps = all_fps(rooms, m)
            if min(fps) < 29:
                # The peers share the machine: one noisy window is not a verdict.
                m = await measure(server, 0.0, window_s)
                fps = all_fps(rooms, m)
            errors = sum(s.decode_errors for r in rooms for p in r.peers for s in p.video_streams())
            detail[str(target)] = {"cpu": round(m.cpu, 1), "min_fps": round(min(fps), 1)}
            if target == base:
                overhead = (m.cpu - cpu_plain) / base
            if min(fps) < 29 or errors:
                break
            passed = target
    finally:
        for room in rooms:
            await room.close(server)
    detail["unrecorded_cpu"] = round(cpu_plain, 1)
    return passed, overhead, detail


async def run(quick: bool) -> dict[str, Any]:
    media = ensure_media_file(60 if quick else 180)
    warmup, window = (0.8, 1.5) if quick else (2.0, 5.0)
    relay_server, forward_server = ServerProcess("relay", 18741), ServerProcess("forward", 18742)
    await asyncio.gather(relay_server.start(), forward_server.start())
    try:
        relay_1, relay_3, _ = await viewers_phase(relay_server, media, warmup, window, False)
        await relay_server.stop()
        fwd_1, fwd_3, latency = await viewers_phase(forward_server, media, warmup, window, True)
        steps = [2, 4, 6, 8] if quick else list(range(2, 17))
        rooms, overhead, detail = await rooms_phase(forward_server, media, steps, 2, warmup, window)
    finally:
        await relay_server.stop()
        await forward_server.stop()
    return {
        "relay_cpu_pct_1": round(relay_1, 1),
        "relay_cpu_pct_3": round(relay_3, 1),
        "forward_cpu_pct_1": round(fwd_1, 1),
        "forward_cpu_pct_3": round(fwd_3, 1),
        "forward_vs_relay_3": round(relay_3 / max(fwd_3, 0.1), 1),
        "rooms_per_process": rooms,
        "added_latency_p95_ms": None if latency is None else round(latency, 1),
        "recording_overhead_pct": round(overhead, 1),
        "rooms_detail": detail,
        "quick": quick,
        "cpus": psutil.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under 30 s, same keys")
    parser.add_argument("--serve", choices=["relay", "forward"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=18741, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.serve:
        asyncio.run(serve(args.serve, args.port))
        return
    _LOGGER.setLevel(logging.INFO)
    print(json.dumps(asyncio.run(run(args.quick))), flush=True)


if __name__ == "__main__":
    main()
