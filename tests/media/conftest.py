from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from media.manager import RoomManager
from media.settings import MediaSettings
from media.store import MemoryRecordingStore

_LOAD_ENV = "CENTER_TEST_CPU_LOAD"


@pytest.fixture(scope="session", autouse=True)
def cpu_load() -> Iterator[int]:
    """With ``CENTER_TEST_CPU_LOAD=N``, N busy-loop processes run beside the media tests.

    A recovery bug (a subscriber that never gets its keyframe back) hides behind an idle
    machine: CI runs this folder once more with ``CENTER_TEST_CPU_LOAD=2``. The processes are
    this session's own children and are ended by PID.
    """
    try:
        count = int(os.environ.get(_LOAD_ENV, "0") or 0)
    except ValueError:
        raise pytest.UsageError(f"{_LOAD_ENV} must be a number of processes") from None
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield count
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()


def media_settings(tmp_path: Path, **overrides: object) -> MediaSettings:
    values: dict[str, object] = {
        "recordings_dir": tmp_path / "recordings",
        "snapshots_dir": tmp_path / "snapshots",
        "recording_cluster_ms": 300,
    }
    values.update(overrides)
    return MediaSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def store() -> MemoryRecordingStore:
    return MemoryRecordingStore()


@pytest.fixture
async def manager(tmp_path: Path, store: MemoryRecordingStore) -> AsyncIterator[RoomManager]:
    mgr = RoomManager(media_settings(tmp_path), store=store)
    await mgr.start()
    yield mgr
    await mgr.close_all()


def leftover_tasks() -> list[asyncio.Task[object]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]
