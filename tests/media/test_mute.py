"""Staff mute (prison visits, issue 14): a muted party's audio reaches no other participant,
its video still does, and its recording keeps the sound (the recording is evidence);
unmuting brings the sound back, and a mute holds across a rejoin."""

from __future__ import annotations

import itertools

import av

from media.manager import RoomManager
from media.recorder import RecordingState
from tests.media.peers import Client, Received, wait_for


def audio_from(client: Client, participant_id: str) -> Received | None:
    mids = [m for m, p in client.carried().items() if p == participant_id]
    for entry in client.received.values():
        if entry.kind == "audio" and entry.mid in mids:
            return entry
    return None


def frames(entry: Received | None) -> int:
    return entry.frames if entry is not None else 0


async def hears(listener: Client, speaker: Client, more: int = 25) -> None:
    """``listener`` decodes ``more`` further audio frames of ``speaker`` (20 ms each)."""
    start = frames(audio_from(listener, speaker.participant_id))
    await wait_for(lambda: frames(audio_from(listener, speaker.participant_id)) >= start + more)


async def sees(viewer: Client, publisher: Client, more: int = 30) -> None:
    def count() -> int:
        video = viewer.video_from(publisher.participant_id)
        return len(video.valid) if video is not None else 0

    start = count()
    await wait_for(lambda: count() >= start + more)


def audio_gaps(path: object) -> list[float]:
    """The gaps over 0.5 s between audio packets in a recording."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        times = [
            float(p.pts * p.time_base)
            for p in container.demux(stream)
            if p.pts is not None and p.time_base is not None
        ]
    assert len(times) > 50
    return [b - a for a, b in itertools.pairwise(sorted(times)) if b - a > 0.5]


async def test_muted_party_is_not_heard_but_seen_and_still_recorded(
    manager: RoomManager,
) -> None:
    room = await manager.create_room(
        "call", allowed={"a": ["party"], "b": ["party"]}, record=True, rejoin_grace_s=30
    )
    alice = await Client(manager, room, "a", base=10_000).join()
    bob = await Client(manager, room, "b", base=20_000).join()
    try:
        await alice.connect()
        await bob.connect()
        await hears(bob, alice)
        await hears(alice, bob)

        assert manager.mute(room, ["a"], True) == 1
        await sees(bob, alice, 10)  # what was queued before the mute has gone out
        muted_at = frames(audio_from(bob, alice.participant_id))
        await sees(bob, alice, 45)  # 1.5 s of video goes on ...
        assert frames(audio_from(bob, alice.participant_id)) == muted_at  # ... in silence
        await hears(alice, bob)  # the other side is not muted
        assert manager.counters.frames_muted > 0

        assert manager.mute(room, ["a"], False) == 1
        await hears(bob, alice)

        # a muted party that drops and rejoins is still muted
        manager.mute(room, ["a"], True)
        await manager.drop(alice.participant_id)
        again = await Client(manager, room, "a", base=30_000).rejoin(
            alice.participant_id, alice.rejoin_token
        )
        await alice.close()
        alice = again
        await alice.connect()
        await sees(bob, alice, 30)
        before = frames(audio_from(bob, alice.participant_id))
        await sees(bob, alice, 30)
        assert frames(audio_from(bob, alice.participant_id)) == before
        recordings = await manager.close_room(room)
    finally:
        await alice.close()
        await bob.close()
    mine = [r for r in recordings if r.participant_id == alice.participant_id]
    assert mine and mine[0].state is RecordingState.FINISHED
    # the recording has alice's sound all through the first mute: at most the rejoin's gap
    assert len(audio_gaps(mine[0].path)) <= 1
