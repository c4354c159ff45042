"""aiortc client -> server -> aiortc client, judged by the counters drawn into each frame."""

from __future__ import annotations

from media import aiortc_adapter
from media.forwarder import ForwardingMode
from media.manager import RoomManager
from tests.media.peers import Client, strictly_increasing, wait_for


async def test_call_forwards_decodable_frames(manager: RoomManager) -> None:
    assert manager.mode is ForwardingMode.FORWARD
    assert manager.metrics()["forwarding_fallback"] == 0
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=100_000).join()
    try:
        await alice.connect()
        await bob.connect()
        await wait_for(lambda: (v := alice.video_from(bob.participant_id)) and len(v.valid) >= 45)
        await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 45)
        at_alice = alice.video_from(bob.participant_id)
        at_bob = bob.video_from(alice.participant_id)
        assert at_alice is not None and at_bob is not None
        # Every decoded picture is right: no garbage, counters only go forward.
        assert None not in at_alice.counters and None not in at_bob.counters
        assert strictly_increasing(at_alice.valid) and strictly_increasing(at_bob.valid)
        assert all(c >= 100_000 for c in at_alice.valid)
        assert all(c < 100_000 for c in at_bob.valid)
        # Roughly the sent rate: few frames are skipped between the first and last seen.
        span = at_alice.valid[-1] - at_alice.valid[0] + 1
        assert len(at_alice.valid) >= 0.8 * span
        # Audio is forwarded the same way.
        audio = [r for r in alice.received.values() if r.kind == "audio"]
        await wait_for(lambda: any(r.frames >= 20 for r in audio))
        assert manager.counters.frames_transcoded == 0
    finally:
        await alice.close()
        await bob.close()


async def test_late_joiner_gets_a_keyframe_first(manager: RoomManager) -> None:
    room = await manager.create_room(
        "call", allowed={"a": ["party"], "b": ["party"], "c": ["party"]}, record=False
    )
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=None).join()
    try:
        await alice.connect()
        await bob.connect()
        await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 60)
        requests_before = manager.counters.upstream_keyframe_requests
        # aiortc's encoder sends a keyframe every 3000 frames: a late joiner without gating
        # and an upstream PLI would decode inter frames against nothing.
        carol = await Client(manager, room, "c", base=None).join()
        try:
            await carol.connect()
            await wait_for(
                lambda: (v := carol.video_from(alice.participant_id)) and len(v.counters) >= 30
            )
            late = carol.video_from(alice.participant_id)
            assert late is not None
            assert None not in late.counters
            assert strictly_increasing(late.valid)
            assert late.valid[0] > 60
            assert manager.counters.upstream_keyframe_requests > requests_before
        finally:
            await carol.close()
    finally:
        await alice.close()
        await bob.close()


async def test_subscriber_keyframe_request_reaches_publisher(manager: RoomManager) -> None:
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=None).join()
    try:
        await alice.connect()
        await bob.connect()
        await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 30)
        entry = bob.video_from(alice.participant_id)
        assert entry is not None
        keyframes = manager.counters.keyframes_in
        asked = manager.counters.subscriber_keyframe_requests
        # The subscriber sends a PLI the way a browser does after losing a picture.
        receiver = bob.transceiver_for(entry).receiver
        assert await aiortc_adapter.request_keyframe(receiver)
        await wait_for(lambda: manager.counters.subscriber_keyframe_requests > asked)
        await wait_for(lambda: manager.counters.keyframes_in > keyframes)
        seen = len(entry.counters)
        await wait_for(lambda: len(entry.counters) >= seen + 15)
        assert None not in entry.counters
        assert strictly_increasing(entry.valid)
    finally:
        await alice.close()
        await bob.close()
