from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from media.manager import RoomManager
from media.settings import MediaSettings
from media.store import MemoryRecordingStore


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
