"""Pure pieces: bitstream parsing, TURN credentials, policy, slot gating, offer pinning."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
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
        # What a browser would offer: VP8 at 120 and its RTX at 121 instead of 97/98.
        sdp_filter=lambda sdp: re.sub(r"\b97\b", "120", re.sub(r"\b98\b", "121", sdp)),
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
