"""Policy in action: monitors, echo rooms, errors, and clean shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from media.errors import (
    BadSdpError,
    InvalidStateError,
    NotAllowedError,
    ParticipantNotFoundError,
    RoomFullError,
    RoomNotFoundError,
)
from media.manager import RoomManager
from media.store import MemoryRecordingStore
from tests.media.conftest import leftover_tasks, media_settings
from tests.media.peers import Client, strictly_increasing, wait_for


async def test_monitor_sees_both_parties_and_is_seen_by_no_one(manager: RoomManager) -> None:
    room = await manager.create_room(
        "call", allowed={"a": ["party"], "b": ["party"], "m": ["monitor"]}, record=False
    )
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=200_000).join()
    monitor = await Client(manager, room, "m", role="monitor", base=None).join()
    try:
        await alice.connect()
        await bob.connect()
        await monitor.connect()
        await wait_for(
            lambda: all(
                (v := monitor.video_from(p.participant_id)) and len(v.valid) >= 30
                for p in (alice, bob)
            )
        )
        from_alice = monitor.video_from(alice.participant_id)
        from_bob = monitor.video_from(bob.participant_id)
        assert from_alice is not None and from_bob is not None
        assert all(c < 200_000 for c in from_alice.valid)
        assert all(c >= 200_000 for c in from_bob.valid)
        assert strictly_increasing(from_alice.valid) and strictly_increasing(from_bob.valid)
        # The parties receive each other only, and never hear of the monitor.
        for party, other in ((alice, bob), (bob, alice)):
            carried = {p for p in party.carried().values() if p is not None}
            assert carried == {other.participant_id}
            joined = {
                e["participant_id"] for e in party.events if e["type"] == "participant_joined"
            }
            assert monitor.participant_id not in joined
        joined = {e["participant_id"] for e in monitor.events if e["type"] == "participant_joined"}
        assert joined == {alice.participant_id, bob.participant_id}
        # The monitor offered one receiving pair, so the second party came by a re-offer.
        assert any(e["type"] == "offer" for e in monitor.events)
    finally:
        for client in (alice, bob, monitor):
            await client.close()


async def test_echo_returns_own_frames(manager: RoomManager) -> None:
    room = await manager.create_room("echo", allowed={"dev": ["party"]})
    client = await Client(manager, room, "dev", base=5_000).join()
    try:
        await client.connect()
        await wait_for(
            lambda: (v := client.video_from(client.participant_id)) and len(v.valid) >= 30
        )
        echoed = client.video_from(client.participant_id)
        assert echoed is not None and None not in echoed.counters
        assert strictly_increasing(echoed.valid)
        assert client.video is not None
        assert echoed.valid[0] >= 5_000 and echoed.valid[-1] < 5_000 + client.video.sent
        assert not any(e["type"] == "offer" for e in client.events)  # no re-offer needed
        await manager.leave(client.participant_id)
        assert manager.rooms() == []  # an echo room ends with its party
    finally:
        await client.close()


async def test_errors_are_domain_errors(manager: RoomManager) -> None:
    with pytest.raises(RoomNotFoundError) as exc:
        await manager.join("nope", "party", "a", lambda e: None)
    assert exc.value.code == "room_not_found"
    room = await manager.create_room("call", allowed={"a": ["party"], "m": ["monitor"]})
    with pytest.raises(NotAllowedError) as not_allowed:
        await manager.join(room, "party", "mallory", lambda e: None)
    assert not_allowed.value.code == "not_allowed"
    with pytest.raises(NotAllowedError):
        await manager.join(room, "monitor", "a", lambda e: None)
    joined = await manager.join(room, "party", "a", lambda e: None)
    for garbage in ("", "hello", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", 42):
        with pytest.raises(BadSdpError) as bad:
            await manager.offer(joined.participant_id, garbage)  # type: ignore[arg-type]
        assert bad.value.code == "bad_sdp"
    with pytest.raises(InvalidStateError) as state:
        await manager.answer(joined.participant_id, "v=0\r\nm=audio 9 x 0\r\n")
    assert state.value.code == "invalid_state"
    with pytest.raises(ParticipantNotFoundError):
        await manager.offer("unknown", "v=0")
    echo = await manager.create_room("echo", allowed={"a": ["party"], "b": ["party"]})
    await manager.join(echo, "party", "a", lambda e: None)
    with pytest.raises(RoomFullError):
        await manager.join(echo, "party", "b", lambda e: None)
    # A participant with a bad offer behind it still works.
    client = Client(manager, room, "a", base=0)
    client.participant_id = joined.participant_id
    try:
        await client.connect()
    finally:
        await client.close()


async def test_close_is_idempotent_and_leaves_no_tasks(tmp_path: Path) -> None:
    manager = RoomManager(media_settings(tmp_path), store=MemoryRecordingStore())
    await manager.start()
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=1000).join()
    await alice.connect()
    await bob.connect()
    await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 10)
    room_obj = manager.room(room)
    await asyncio.gather(manager.close_room(room), manager.close_room(room))
    await room_obj.close()
    await manager.close_all()
    await manager.close_all()
    assert any(e == {"type": "bye", "reason": "room_closed"} for e in alice.events)
    await alice.close()
    await bob.close()
    await asyncio.sleep(0)
    assert leftover_tasks() == []
