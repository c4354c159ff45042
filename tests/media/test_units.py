"""Pure pieces: bitstream parsing, TURN credentials, policy, slot gating, offer pinning."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack
from aiortc.rtp import RtpPacket

from media import aiortc_adapter, bitstream, ice, policy
from media.bitstream import VP8, EncodedFrame
from media.errors import NotAllowedError, RoomFullError
from media.forwarder import ForwardingMode, TrackForwarder
from media.manager import RoomManager
from media.metrics import MediaCounters
from media.policy import Role, RoomKind
from media.settings import IceServerConfig
from media.slot import SlotTrack
from tests.media.conftest import media_settings
from tests.media.peers import Client, strictly_increasing, wait_for

VP8_KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00]) + b"\0" * 10
VP8_DELTA = bytes([0x11, 0x02, 0x00]) + b"\0" * 10


def test_vp8_keyframe_and_size() -> None:
    assert bitstream.vp8_is_keyframe(VP8_KEY)
    assert not bitstream.vp8_is_keyframe(VP8_DELTA)
    assert bitstream.vp8_dimensions(VP8_KEY) == (320, 240)
    assert bitstream.vp8_dimensions(VP8_DELTA) is None


def test_h264_keyframe() -> None:
    sps, pps, idr, non_idr = b"\x67\x42", b"\x68\xce", b"\x65\x88", b"\x41\x9a"
    key = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + b"\x00\x00\x01" + idr
    assert bitstream.is_keyframe("video/h264", key)
    assert not bitstream.is_keyframe("video/h264", b"\x00\x00\x00\x01" + non_idr)
    assert (
        bitstream.h264_parameter_sets(key) == b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    )
    assert bitstream.is_keyframe("audio/opus", b"\x01")


def test_turn_rest_credentials_follow_coturn() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    username, credential = ice.turn_rest_credentials("s3cret", "officer", 3600, now)
    assert username == f"{int(now.timestamp()) + 3600}:officer"
    expected = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


def test_ice_servers_only_from_settings(tmp_path: Path) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert ice.ice_servers_for(media_settings(tmp_path), "u", now) == []
    assert ice.rtc_configuration([]).iceServers == []  # never aiortc's public STUN default
    settings = media_settings(
        tmp_path,
        ice_servers=(
            IceServerConfig(("stun:10.0.0.1:3478",)),
            IceServerConfig(("turn:10.0.0.1:3478?transport=udp",)),
            IceServerConfig(("turn:10.0.0.2",), username="fixed", credential="pw"),
        ),
        turn_secret="k",
    )
    servers = ice.ice_servers_for(settings, "u", now)
    assert servers[0] == {"urls": ["stun:10.0.0.1:3478"]}
    assert servers[1]["username"].endswith(":u") and "credential" in servers[1]
    assert servers[2] == {"urls": ["turn:10.0.0.2"], "username": "fixed", "credential": "pw"}
    config = ice.rtc_configuration(servers)
    assert [s.urls for s in config.iceServers] == [s["urls"] for s in servers]
    no_secret = media_settings(tmp_path, ice_servers=settings.ice_servers)
    assert len(ice.ice_servers_for(no_secret, "u", now)) == 2


def test_policy() -> None:
    allowed = {"a": frozenset({Role.PARTY}), "m": frozenset({Role.MONITOR})}
    policy.check_join(RoomKind.CALL, Role.PARTY, "a", allowed, {}, 2)
    with pytest.raises(NotAllowedError):
        policy.check_join(RoomKind.CALL, Role.PARTY, "m", allowed, {}, 2)
    with pytest.raises(NotAllowedError):
        policy.check_join(RoomKind.CALL, Role.PARTY, "x", allowed, {}, 2)
    with pytest.raises(RoomFullError):
        policy.check_join(RoomKind.CALL, Role.PARTY, "a", allowed, {Role.PARTY: 2}, 2)
    with pytest.raises(NotAllowedError):
        policy.check_join(RoomKind.ECHO, Role.MONITOR, "m", allowed, {}, 2)
    call = RoomKind.CALL
    assert policy.sees(call, Role.PARTY, "a", Role.PARTY, "b")
    assert policy.sees(call, Role.MONITOR, "m", Role.PARTY, "a")
    assert not policy.sees(call, Role.PARTY, "a", Role.MONITOR, "m")
    assert not policy.sees(call, Role.PARTY, "a", Role.PARTY, "a")
    assert policy.sees(RoomKind.ECHO, Role.PARTY, "a", Role.PARTY, "a")
    assert not policy.recorded(RoomKind.ECHO, Role.PARTY)
    assert not policy.recorded(call, Role.MONITOR)


class _FakeSource:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.sinks: list[object] = []
        self.id = "fake"

    def add_sink(self, sink: object) -> None:
        self.sinks.append(sink)
        self.request_keyframe("new sink")

    def remove_sink(self, sink: object) -> None:
        self.sinks.remove(sink)

    def request_keyframe(self, reason: str) -> None:
        self.requests.append(reason)


def _frame(n: int, key: bool) -> EncodedFrame:
    return EncodedFrame(VP8, VP8_KEY if key else VP8_DELTA, n * 3000, 90000, key, time.monotonic())


async def test_slot_withholds_until_keyframe_and_regates_on_drop() -> None:
    counters = MediaCounters()
    slot = SlotTrack("video", counters=counters, max_queue=3)
    source = _FakeSource()
    slot.bind(source)  # type: ignore[arg-type]
    assert source.requests == ["new sink"]
    slot.push(_frame(0, False))
    slot.push(_frame(1, False))
    assert counters.frames_gated == 2
    slot.push(_frame(2, True))
    slot.push(_frame(3, False))
    first = await slot.recv()
    second = await slot.recv()
    assert (first.pts, second.pts) == (0, 3000)  # re-based to the slot's own timeline
    for n in range(4, 8):
        slot.push(_frame(n, False))  # the fourth overflows: drop, re-gate, ask upstream
    assert counters.frames_dropped > 0
    assert source.requests[-1].startswith("frames dropped")
    slot.push(_frame(8, False))
    assert counters.frames_gated == 3
    slot.stop()


def _browser_payload_types(sdp: str) -> str:
    """What a browser would offer: VP8 at 120 and its RTX at 121 instead of aiortc's 97/98.

    Only payload-type positions change: a blind ``97``→``120`` over the whole SDP also hits
    the DTLS fingerprint (``…:97:…``) in about one offer in four, and the server then fails
    that peer for a fingerprint mismatch — which is what made this test flaky.
    """
    mapping = {"97": "120", "98": "121"}

    def swap(text: str) -> str:
        return re.sub(r"\b(97|98)\b", lambda m: mapping[m.group(1)], text)

    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            head, _, formats = line.partition(" UDP/TLS/RTP/SAVPF ")
            line = f"{head} UDP/TLS/RTP/SAVPF {swap(formats)}" if formats else line
        elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            line = swap(line)
        lines.append(line)
    return "\r\n".join(lines)


def test_browser_payload_types_filter_leaves_fingerprints_alone() -> None:
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97 98\r\na=rtpmap:97 VP8/90000\r\n"
        "a=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=97\r\na=rtcp-fb:97 nack pli\r\n"
        "a=fingerprint:sha-256 12:97:98:AB\r\n"
    )
    out = _browser_payload_types(sdp)
    assert "m=video 9 UDP/TLS/RTP/SAVPF 120 121" in out
    assert "a=fmtp:121 apt=120" in out and "a=rtcp-fb:120 nack pli" in out
    assert "a=fingerprint:sha-256 12:97:98:AB" in out


async def test_server_reoffer_keeps_negotiated_payload_types(tmp_path: Path) -> None:
    """A client whose payload types differ from aiortc's (like a browser's) must see the
    same ones in every re-offer, and one payload type must mean one codec in the bundle."""
    manager = RoomManager(media_settings(tmp_path), store=None)
    await manager.start()
    room = await manager.create_room(
        "call", allowed={"a": ["party"], "b": ["party"], "m": ["monitor"]}, record=False
    )
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=700_000).join()
    monitor = await Client(
        manager,
        room,
        "m",
        role="monitor",
        base=None,
        sdp_filter=_browser_payload_types,
    ).join()

    try:
        await alice.connect()
        await bob.connect()
        await monitor.connect()
        await wait_for(lambda: any(e["type"] == "offer" for e in monitor.events))
        offer = next(e for e in monitor.events if e["type"] == "offer")["sdp"]
        rtpmaps = re.findall(r"a=rtpmap:(\d+) ([\w-]+)/", offer)
        assert ("120", "VP8") in rtpmaps and ("97", "VP8") not in rtpmaps
        by_pt: dict[str, set[str]] = {}
        for pt, name in rtpmaps:
            by_pt.setdefault(pt, set()).add(name)
        assert all(len(names) == 1 for names in by_pt.values())
        await wait_for(
            lambda: all(
                (v := monitor.video_from(p.participant_id)) and len(v.valid) >= 15
                for p in (alice, bob)
            )
        )
        for party in (alice, bob):
            entry = monitor.video_from(party.participant_id)
            assert entry is not None and strictly_increasing(entry.valid)
    finally:
        for client in (alice, bob, monitor):
            await client.close()
        await manager.close_all()


def _rtp(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=97, sequence_number=seq, timestamp=ts, marker=int(marker))
    packet._data = data  # type: ignore[attr-defined]
    return packet


def test_prompt_jitter_buffer_releases_on_marker() -> None:
    """A forwarding hop must not wait for the next frame to know this one is complete."""
    buffer = aiortc_adapter._PromptJitterBuffer(128, is_video=True)
    assert buffer.add(_rtp(10, 3000, False, b"a"))[1] is None
    frame = buffer.add(_rtp(11, 3000, True, b"b"))[1]
    assert frame is not None and (frame.data, frame.timestamp) == (b"ab", 3000)
    # Reordered: nothing until the gap is filled, then the frame in order.
    assert buffer.add(_rtp(13, 6000, True, b"d"))[1] is None
    frame = buffer.add(_rtp(12, 6000, False, b"c"))[1]
    assert frame is not None and frame.data == b"cd"
    audio = aiortc_adapter._PromptJitterBuffer(16, is_video=False)
    frame = audio.add(_rtp(1, 960, False, b"opus"))[1]
    assert frame is not None and frame.data == b"opus"


def test_forwarding_mode_values() -> None:
    assert {m.value for m in ForwardingMode} == {"forward", "relay"}
    assert TrackForwarder.__name__ == "TrackForwarder"


def _vp8_rtp(seq: int, ts: int, marker: bool, start: bool) -> RtpPacket:
    packet = _rtp(seq, ts, marker, bytes([seq & 0xFF]))
    packet.payload = bytes([0x10 if start else 0x00, 0])
    return packet


def _flagged(frame: object) -> bool:
    assert isinstance(frame, aiortc_adapter._Frame)
    return frame.discontinuity


def test_prompt_jitter_buffer_gives_up_on_a_hole_and_flags_the_next_frame() -> None:
    """A packet lost for good must not stall the video until 128 packets queued behind it:
    after the hole timeout the buffer skips to the next frame start and flags it."""
    now = [0.0]
    buffer = aiortc_adapter._PromptJitterBuffer(
        128, is_video=True, hole_timeout_s=0.3, clock=lambda: now[0]
    )
    first = buffer.add(_vp8_rtp(1, 3000, True, True))[1]
    assert first is not None and not _flagged(first)
    # Packet 2 (first half of frame 6000) is lost; 3 is its second half, 4 a whole frame.
    assert buffer.add(_vp8_rtp(3, 6000, True, False))[1] is None
    now[0] = 0.1
    assert buffer.add(_vp8_rtp(4, 9000, True, True))[1] is None  # still waiting for a NACK
    now[0] = 0.45
    frame = buffer.add(_vp8_rtp(5, 12000, True, True))[1]
    assert frame is not None and frame.timestamp == 9000  # frame 6000 is never released
    assert _flagged(frame) and buffer.holes_skipped == 1
    after = buffer.add(_vp8_rtp(6, 15000, True, True))[1]
    assert after is not None and after.timestamp == 12000 and not _flagged(after)


def test_prompt_jitter_buffer_waits_for_a_retransmission_in_time() -> None:
    now = [0.0]
    buffer = aiortc_adapter._PromptJitterBuffer(
        128, is_video=True, hole_timeout_s=0.3, clock=lambda: now[0]
    )
    buffer.add(_vp8_rtp(1, 3000, True, True))
    assert buffer.add(_vp8_rtp(3, 6000, True, False))[1] is None
    now[0] = 0.2
    frame = buffer.add(_vp8_rtp(2, 6000, False, True))[1]  # the NACKed packet came back
    assert frame is not None and frame.timestamp == 6000
    assert not _flagged(frame) and buffer.holes_skipped == 0


async def test_slot_regates_after_frames_lost_upstream() -> None:
    counters = MediaCounters()
    slot = SlotTrack("video", counters=counters, max_queue=10)
    source = _FakeSource()
    slot.bind(source)  # type: ignore[arg-type]
    slot.push(_frame(0, True))
    lost = EncodedFrame(VP8, VP8_DELTA, 9000, 90000, False, time.monotonic(), discontinuity=True)
    slot.push(lost)
    slot.push(_frame(4, False))
    assert counters.frames_gated == 2  # the flagged frame and the one after it
    slot.push(_frame(5, True))
    assert [(await slot.recv()).pts for _ in range(2)] == [0, 15000]
    slot.stop()


class _FakeReceiver:
    """What the forwarder uses of a receiver: its sources, PLI and RTCP (REMB)."""

    def __init__(self) -> None:
        self.plis = 0
        self.rtcp: list[object] = []
        self._RTCRtpReceiver__rtcp_ssrc = 99  # aiortc's own RTCP sender SSRC

    async def _send_rtcp(self, packet: object) -> None:
        self.rtcp.append(packet)

    def getSynchronizationSources(self) -> list[object]:
        return [type("Source", (), {"source": 1234})()]

    async def _send_rtcp_pli(self, ssrc: int) -> None:
        self.plis += 1


class _QueueTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[EncodedFrame] = asyncio.Queue()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        return await self.queue.get()


async def test_forwarder_keeps_asking_for_a_keyframe_until_one_arrives() -> None:
    """A lost PLI (or a lost keyframe) must be asked for again, or a gated subscriber stays
    black forever; once a keyframe arrives the requests stop."""
    track, receiver = _QueueTrack(), _FakeReceiver()
    forwarder = TrackForwarder(
        track=track,
        receiver=receiver,  # type: ignore[arg-type]
        publisher_id="p",
        codec=VP8,
        mode=ForwardingMode.FORWARD,
        counters=MediaCounters(),
        pli_min_interval_s=0.01,
    )
    slot = SlotTrack("video", counters=MediaCounters(), max_queue=10)
    forwarder.start()
    try:
        slot.bind(forwarder)
        await wait_for(lambda: receiver.plis >= 3, limit_s=10)  # nobody answered: ask again
        track.queue.put_nowait(_frame(1, True))
        await wait_for(lambda: slot.frames_out == 0 and not slot._queue.empty(), limit_s=10)
        settled = receiver.plis
        for _ in range(10):
            await asyncio.sleep(0.02)
        assert receiver.plis <= settled + 1  # at most the one already under way
    finally:
        slot.stop()
        await forwarder.close()


async def test_the_publisher_is_asked_for_the_weakest_subscribers_bitrate() -> None:
    """REMB: the minimum of the subscribers' estimates and the room cap (never below the
    floor) goes to the publisher; aiortc's own REMBs are lowered to it; a subscriber that
    leaves no longer counts."""
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

    track, receiver = _QueueTrack(), _FakeReceiver()
    forwarder = TrackForwarder(
        track=track,
        receiver=receiver,  # type: ignore[arg-type]
        publisher_id="p",
        codec=VP8,
        mode=ForwardingMode.FORWARD,
        counters=MediaCounters(),
        pli_min_interval_s=0.01,
        max_video_bps=1_000_000,
    )
    weak = SlotTrack("video", counters=MediaCounters(), max_queue=10)
    strong = SlotTrack("video", counters=MediaCounters(), max_queue=10)
    forwarder.start()
    try:
        weak.bind(forwarder)
        strong.bind(forwarder)
        assert forwarder.target() == 1_000_000  # only the room cap so far
        weak.on_bitrate_estimate(300_000)
        strong.on_bitrate_estimate(2_000_000)
        assert forwarder.target() == 300_000
        # the server's own estimate of the publisher's uplink, lower still, wins
        own = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(800_000, [1234])
        )
        await receiver._send_rtcp(own)
        assert unpack_remb_fci(receiver.rtcp[-1].fci)[0] == 300_000  # type: ignore[attr-defined]
        weak.on_bitrate_estimate(10_000)
        assert forwarder.target() == 150_000  # the floor: audio and a usable picture
        weak.unbind()
        assert forwarder.target() == 800_000  # strong's 2 Mbit/s, cap 1 Mbit/s, own 800k
        await wait_for(lambda: forwarder.target_bps == 800_000, limit_s=10)
    finally:
        weak.stop()
        strong.stop()
        await forwarder.close()
