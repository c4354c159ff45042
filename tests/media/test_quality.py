"""Call quality on the record: grades, the room's timeline, and naming the degraded side."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media.manager import RoomManager
from media.quality import Grade, QualitySample, degraded_spans, grade
from tests.media.conftest import media_settings
from tests.media.netem import ImpairedLink, Impairment
from tests.media.peers import Client, wait_for


def test_grades_follow_loss_jitter_and_rtt() -> None:
    assert grade(0.0, 5, 40) is Grade.EXCELLENT
    assert grade(0.05, 5, 150) is Grade.GOOD
    assert grade(0.0, 5, 250) is Grade.GOOD
    assert grade(0.15, 5, 40) is Grade.POOR
    assert grade(0.0, 80, 40) is Grade.POOR
    assert grade(None, None, None) is Grade.EXCELLENT


def test_degraded_spans_name_side_and_direction() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)

    def sample(n: int, pid: str, direction: str, g: Grade) -> QualitySample:
        at = t0 + timedelta(seconds=2 * n)
        return QualitySample(at, pid, "party", direction, "connected", g, 0, 0, 0, 0, 0)

    samples = [
        sample(0, "a", "uplink", Grade.GOOD),
        sample(0, "b", "uplink", Grade.EXCELLENT),
        sample(1, "a", "uplink", Grade.POOR),
        sample(2, "a", "uplink", Grade.LOST),
        sample(2, "b", "uplink", Grade.EXCELLENT),
        sample(3, "a", "uplink", Grade.GOOD),
    ]
    (span,) = degraded_spans(samples)
    assert (span.participant_id, span.direction, span.worst) == ("a", "uplink", Grade.LOST)
    assert (span.start, span.end) == (t0 + timedelta(seconds=2), t0 + timedelta(seconds=4))


@pytest.fixture
async def sampled(tmp_path: Path) -> AsyncIterator[RoomManager]:
    manager = RoomManager(media_settings(tmp_path, quality_sample_s=0.5), store=None)
    await manager.start()
    yield manager
    await manager.close_all()


async def test_a_degraded_uplink_is_named_in_the_timeline(sampled: RoomManager) -> None:
    """Alice's uplink loses 15 %: the timeline says alice/uplink is poor, bob's uplink and
    alice's downlink are not, and the monitor is told live."""
    room_id = await sampled.create_room(
        "call", allowed={"a": ["party"], "b": ["party"], "m": ["monitor"]}, record=False
    )
    link = ImpairedLink(uplink=Impairment(loss=0.15), seed=8)
    alice = await Client(sampled, room_id, "a", base=0, link=link).join()
    bob = await Client(sampled, room_id, "b", base=500_000).join()
    monitor = await Client(sampled, room_id, "m", role="monitor", base=None).join()
    room = sampled.room(room_id)

    def samples_of(pid: str, direction: str) -> list[QualitySample]:
        return [s for s in room.quality if s.participant_id == pid and s.direction == direction]

    try:
        await alice.connect()
        await bob.connect()
        await monitor.connect(extra_receive=1)
        await wait_for(
            lambda: (
                len([s for s in samples_of(alice.participant_id, "uplink") if s.loss]) >= 4
                and len(samples_of(bob.participant_id, "uplink")) >= 6
            ),
            limit_s=60,
        )
        spans = degraded_spans(list(room.quality))
        named = {(s.participant_id, s.direction) for s in spans if s.worst is Grade.POOR}
        assert (alice.participant_id, "uplink") in named
        assert (bob.participant_id, "uplink") not in {
            (s.participant_id, s.direction) for s in spans
        }
        alice_loss = [s.loss for s in samples_of(alice.participant_id, "uplink") if s.loss]
        assert max(alice_loss) >= 0.10
        bob_up = samples_of(bob.participant_id, "uplink")[-1]
        assert bob_up.bitrate_kbps and bob_up.fps and bob_up.grade is not Grade.POOR
        quality_events = [e for e in monitor.events if e["type"] == "quality"]
        assert any(
            e["participant_id"] == alice.participant_id
            and e["direction"] == "uplink"
            and e["grade"] == "poor"
            for e in quality_events
        )
        assert not [e for e in alice.events if e["type"] == "quality"]  # staff only
    finally:
        for client in (alice, bob, monitor):
            await client.close()
