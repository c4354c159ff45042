"""The SQLAlchemy store on real databases migrated with Alembic: SQLite and PostgreSQL.

No skip guard: the store's dependencies are part of this project, and PostgreSQL comes from
``tests/conftest.py``'s ``database_url`` (skipped where it is down, a failure with ``CI=true``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from center import audit
from center.db import Base, create_engine, create_sessionmaker
from center.migrate import migrate
from center.models import AuditEntry
from media import models
from media.models import Recording, Snapshot
from media.recorder import RecordingInfo, RecordingState
from media.store import SnapshotInfo, SqlRecordingStore


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[Any]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def test_migration_matches_models(sessionmaker: Any) -> None:
    tables = {models.Recording.__tablename__, models.Snapshot.__tablename__}

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection)
        return [
            d for d in compare_metadata(context, Base.metadata) if any(t in repr(d) for t in tables)
        ]

    async with sessionmaker() as session:
        connection = await session.connection()
        assert await connection.run_sync(diff) == []


async def test_sql_store_rows_and_audit_chain(sessionmaker: Any, tmp_path: Path) -> None:
    store = SqlRecordingStore(sessionmaker)
    start = datetime(2026, 5, 1, 8, tzinfo=UTC)
    info = RecordingInfo("r1", "room", "p1", tmp_path / "r1.webm", start, RecordingState.WAITING)
    await store.recording_started(info)
    assert [r.id for r in await store.unfinished_recordings()] == []  # waiting, not recording
    finished = RecordingInfo(
        "r1",
        "room",
        "p1",
        tmp_path / "r1.webm",
        start,
        RecordingState.FINISHED,
        ended_at=start + timedelta(minutes=5),
        size_bytes=1234,
        duration_s=300.0,
        sha256="ab" * 32,
    )
    await store.recording_finished(finished)
    assert await store.expired_recordings(start) == []
    (expired,) = await store.expired_recordings(start + timedelta(days=1))
    assert expired == finished
    await store.recording_deleted(expired, start + timedelta(days=1))
    snap = SnapshotInfo(
        "s1", "room", "p1", "video", tmp_path / "s1.jpg", "cd" * 32, 320, 240, start
    )
    await store.snapshot_taken(snap, actor="officer")
    async with sessionmaker() as session:
        row = await session.get(Recording, "r1")
        assert row is not None and row.state == "deleted" and row.size_bytes == 1234
        assert row.ended_at == start + timedelta(minutes=5)
        assert (await session.get(Snapshot, "s1")) is not None
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        actions = (await session.execute(query)).scalars().all()
        assert actions == [
            "media.recording_started",
            "media.recording_finished",
            "media.recording_deleted",
            "media.snapshot_taken",
        ]
        assert (await audit.verify_chain(session)).ok
