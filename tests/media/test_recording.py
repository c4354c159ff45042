"""Recordings: decodable, measured, crash tolerant; snapshots; retention."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from media.manager import RoomManager
from media.recorder import RecordingInfo, RecordingState
from media.store import MemoryRecordingStore
from tests.media.conftest import media_settings
from tests.media.peers import Client, read_counter, strictly_increasing, wait_for

ROOT = Path(__file__).resolve().parents[2]


def decode_all(path: Path) -> tuple[list[int | None], int]:
    """Decode every packet; returns the video counters and the number of audio frames."""
    counters: list[int | None] = []
    audio = 0
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                counters.append(read_counter(frame))
            else:
                audio += 1
    return counters, audio


async def test_recording_decodes_fully(manager: RoomManager, store: MemoryRecordingStore) -> None:
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room, "a", base=0).join()
    bob = await Client(manager, room, "b", base=300_000).join()
    try:
        await alice.connect()
        await bob.connect()
        await wait_for(lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 45)
        recordings = await manager.close_room(room)
    finally:
        await alice.close()
        await bob.close()
    assert len(recordings) == 2
    for info in recordings:
        assert info.state is RecordingState.FINISHED
        assert info.path.suffix == ".webm"
        assert info.size_bytes == info.path.stat().st_size > 0
        assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
        assert info.duration_s is not None and info.duration_s > 0.5
        counters, audio = decode_all(info.path)
        assert len(counters) >= 15 and None not in counters
        assert strictly_increasing([c for c in counters if c is not None])
        assert audio >= 10
        assert store.recordings[info.id] == info
    bases = sorted(min(c for c in decode_all(i.path)[0] if c is not None) for i in recordings)
    assert bases[0] < 300_000 <= bases[1]
    actions = [a for a, _, _ in store.audit]
    assert actions.count("media.recording_started") == 2
    assert actions.count("media.recording_finished") == 2
    assert manager.counters.recordings_finished == 2


async def test_snapshot_is_the_next_keyframe_as_jpeg(
    manager: RoomManager, store: MemoryRecordingStore
) -> None:
    room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
    alice = await Client(manager, room, "a", base=42_000).join()
    try:
        await alice.connect()
        await wait_for(lambda: manager.counters.frames_in > 30)
        info = await manager.snapshot(alice.participant_id, actor="officer-1")
    finally:
        await alice.close()
    data = info.path.read_bytes()
    assert data[:2] == b"\xff\xd8"
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert (info.width, info.height) == (320, 240)
    assert store.snapshots[info.id] == info
    with av.open(str(info.path)) as container:
        frame = next(container.decode(video=0))
    counter = read_counter(frame)
    assert counter is not None and counter >= 42_000


async def test_killed_process_leaves_a_playable_recording(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.media.killed_call",
        str(tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    progress: dict[str, float] = {}
    try:
        async with asyncio.timeout(60):
            while not progress or float(progress["recorded_s"]) < 3.0:
                line = await proc.stdout.readline()
                assert line, "the call process died"
                progress = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    path = Path(str(progress["path"]))
    counters, _ = decode_all(path)
    valid = [c for c in counters if c is not None]
    assert None not in counters
    assert strictly_increasing(valid)
    # Everything but the last unflushed cluster (300 ms here) survived the kill.
    decoded_s = len(valid) / 30
    assert decoded_s >= progress["recorded_s"] - 1.0


async def test_fallback_when_self_test_fails(tmp_path: Path) -> None:
    manager = RoomManager(media_settings(tmp_path), store=MemoryRecordingStore())
    await manager.start(inject_self_test_failure=True)
    try:
        assert manager.mode == "relay"
        assert manager.metrics()["forwarding_fallback"] == 1
        assert "injected" in manager.self_test_reason
        room = await manager.create_room("call", allowed={"a": ["party"], "b": ["party"]})
        alice = await Client(manager, room, "a", base=0).join()
        bob = await Client(manager, room, "b", base=None).join()
        try:
            await alice.connect()
            await bob.connect()
            await wait_for(
                lambda: (v := bob.video_from(alice.participant_id)) and len(v.valid) >= 30
            )
            entry = bob.video_from(alice.participant_id)
            assert entry is not None and strictly_increasing(entry.valid)
            recordings = await manager.close_room(room)
        finally:
            await alice.close()
            await bob.close()
        (info,) = recordings
        counters, _ = decode_all(info.path)
        assert len(counters) > 5 and None not in counters
    finally:
        await manager.close_all()


async def test_retention_sweep_and_crash_recovery(tmp_path: Path) -> None:
    store = MemoryRecordingStore()
    now = datetime(2026, 11, 25, tzinfo=UTC)
    old = tmp_path / "old.webm"
    old.write_bytes(b"x")
    fresh = tmp_path / "fresh.webm"
    fresh.write_bytes(b"y")
    crashed = tmp_path / "crashed.webm"
    crashed.write_bytes(b"z" * 10)
    for rid, path, age, state in (
        ("old", old, 200, RecordingState.FINISHED),
        ("fresh", fresh, 3, RecordingState.FINISHED),
        ("crashed", crashed, 1, RecordingState.RECORDING),
    ):
        started = now - timedelta(days=age)
        await store.recording_started(
            RecordingInfo(rid, "room", None, path, started, state, ended_at=started)
        )
    manager = RoomManager(
        media_settings(tmp_path, retention_days=180), store=store, now=lambda: now
    )
    await manager.start()
    recovered = store.recordings["crashed"]
    assert recovered.state is RecordingState.INTERRUPTED
    assert recovered.sha256 == hashlib.sha256(b"z" * 10).hexdigest()
    assert await manager.sweep_retention() == 1
    assert not old.exists() and fresh.exists()
    assert store.recordings["old"].state is RecordingState.DELETED
    assert ("media.recording_deleted", "old") in [(a, t) for a, t, _ in store.audit]
    await manager.close_all()
