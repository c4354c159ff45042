"""The migrations build exactly the tables the models declare (on both databases), so a
fresh database and an upgraded one behave the same."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import alerts.face_models
import alerts.models  # noqa: F401  (registers the alert tables on Base)
import center.revocation
import center.visits.models  # noqa: F401
from center.db import Base, create_engine, create_sessionmaker
from center.migrate import migrate

_TABLES = (
    "revocations",
    "live_settings",
    "checkins",
    "device_events",
    "location_fixes",
    "prisons",
    "prison_terminals",
    "prison_staff",
    "inmates",
    "relatives",
    "visit_points",
    "visits",
    "visit_parties",
    "visit_items",
    "visit_notices",
    "face_baselines",
    "face_checks",
)


async def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection)
            return [
                d
                for d in compare_metadata(context, Base.metadata)
                if any(f"'{t}'" in repr(d) or f"Table('{t}'" in repr(d) for t in _TABLES)
            ]

        async with create_sessionmaker(engine)() as session:
            connection = await session.connection()
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()
