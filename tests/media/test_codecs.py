"""H.264 from browsers that insist on it: forwarded when both legs agree, else transcoded."""

from __future__ import annotations

from media.bitstream import H264, VP8
from media.manager import RoomManager
from media.recorder import RecordingState
from tests.media.peers import Client, strictly_increasing, wait_for
from tests.media.test_recording import decode_all


async def test_h264_is_forwarded_when_both_ends_agree(manager: RoomManager) -> None:
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room, "a", base=0, video_codec=H264).join()
    bob = await Client(manager, room, "b", base=None, video_codec=H264).join()
    try:
        await alice.connect()
        await bob.connect()
        await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 30)
        entry = bob.video_from(alice.participant_id)
        assert entry is not None and None not in entry.counters
        assert strictly_increasing(entry.valid)
        assert manager.counters.frames_transcoded == 0
        (info,) = await manager.close_room(room)
    finally:
        await alice.close()
        await bob.close()
    assert info.state is RecordingState.FINISHED and info.path.suffix == ".mkv"
    counters, audio = decode_all(info.path)
    assert len(counters) >= 10 and None not in counters and audio > 0


async def test_h264_publisher_to_vp8_subscriber_is_transcoded(manager: RoomManager) -> None:
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]}, record=False)
    alice = await Client(manager, room, "a", base=0, video_codec=H264).join()
    bob = await Client(manager, room, "b", base=None, video_codec=VP8).join()
    try:
        await alice.connect()
        await bob.connect()
        await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 30)
        entry = bob.video_from(alice.participant_id)
        assert entry is not None and strictly_increasing(entry.valid)
        assert manager.counters.frames_transcoded > 0
    finally:
        await alice.close()
        await bob.close()
