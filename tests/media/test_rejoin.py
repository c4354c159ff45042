"""Rejoin after a dropped connection: the same slot and the same recording within the grace
period (on the manager's clock, advanced by the test), refused after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from media.errors import NotAllowedError, RejoinExpiredError
from media.manager import RoomManager
from media.recorder import RecordingState
from media.store import MemoryRecordingStore
from tests.media.conftest import media_settings
from tests.media.peers import Client, read_counter, wait_for


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
async def held_manager(
    tmp_path: Path, store: MemoryRecordingStore, clock: _Clock
) -> AsyncIterator[RoomManager]:
    manager = RoomManager(media_settings(tmp_path, rejoin_grace_s=20.0), store=store, now=clock)
    await manager.start()
    yield manager
    await manager.close_all()


async def _dropped_call(manager: RoomManager) -> tuple[str, Client, Client]:
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]}, record=True)
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=500_000).join()
    await alice.connect()
    await bob.connect()
    await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 20)
    # The page is torn down without a leave: its transport closes under the server.
    await alice.pc.close()
    await wait_for(
        lambda: any(e["type"] == "participant_reconnecting" for e in bob.events), limit_s=30
    )
    return room, alice, bob


def _file_counters(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [c for frame in container.decode(video=0) if (c := read_counter(frame)) is not None]


async def test_rejoin_within_the_grace_period_keeps_slot_and_recording(
    held_manager: RoomManager, clock: _Clock
) -> None:
    room, alice, bob = await _dropped_call(held_manager)
    seen_before = bob.video_from(alice.participant_id)
    assert held_manager.room(room).held() == [alice.participant_id]
    clock.advance(8)
    back = Client(held_manager, room, "a", base=100_000)
    try:
        with pytest.raises(NotAllowedError):
            await back.rejoin(alice.participant_id, "not-the-token")
        await back.rejoin(alice.participant_id, alice.rejoin_token)
        assert back.participant_id == alice.participant_id
        await back.connect()
        await wait_for(
            lambda: (
                (v := bob.video_from(alice.participant_id)) is not None
                and sum(1 for c in v.valid if c >= 100_000) >= 20
            )
        )
        # Same participant, same m-line on bob's side: no renegotiation, no new tile.
        assert bob.video_from(alice.participant_id) is seen_before
        await wait_for(lambda: (v := back.video_from(bob.participant_id)) and len(v.valid) >= 10)
        live = {r.info.participant_id: r for r in held_manager.room(room).live_recordings()}
        recording = live[alice.participant_id]
        assert len(recording.gaps) == 1
        gap_start, gap_end = recording.gaps[0]
        assert gap_end > gap_start
        recordings = await held_manager.close_room(room)
        mine = [r for r in recordings if r.participant_id == alice.participant_id]
        assert len(mine) == 1 and mine[0].state is RecordingState.FINISHED
        counters = _file_counters(mine[0].path)
        # One file, playable across the gap: the first connection's frames, then the second's.
        assert any(c < 100_000 for c in counters) and any(c >= 100_000 for c in counters)
        first_new = next(i for i, c in enumerate(counters) if c >= 100_000)
        assert all(c < 100_000 for c in counters[:first_new])
        assert held_manager.metrics()["rejoins"] == 1
    finally:
        for client in (back, bob):
            await client.close()
        await alice.close()


async def test_rejoin_after_the_grace_period_is_refused(
    held_manager: RoomManager, clock: _Clock, store: MemoryRecordingStore
) -> None:
    room, alice, bob = await _dropped_call(held_manager)
    clock.advance(21)
    late = Client(held_manager, room, "a", base=100_000)
    try:
        with pytest.raises(RejoinExpiredError):
            await late.rejoin(alice.participant_id, alice.rejoin_token)
        assert held_manager.room(room).held() == []
        assert any(
            e["type"] == "participant_left" and e["participant_id"] == alice.participant_id
            for e in bob.events
        )
        finished = held_manager.room(room).recordings
        assert [r.participant_id for r in finished] == [alice.participant_id]
        assert finished[0].state is RecordingState.FINISHED
        with pytest.raises(NotAllowedError):  # and the slot is gone for good
            await late.rejoin(alice.participant_id, alice.rejoin_token)
    finally:
        await late.close()
        await bob.close()
        await alice.close()


async def test_release_expired_frees_held_slots_on_the_clock(
    held_manager: RoomManager, clock: _Clock
) -> None:
    room, alice, bob = await _dropped_call(held_manager)
    try:
        clock.advance(19)
        assert await held_manager.release_expired() == 0
        clock.advance(2)
        assert await held_manager.release_expired() == 1
        assert held_manager.room(room).held() == []
    finally:
        await bob.close()
        await alice.close()
