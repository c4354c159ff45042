"""Apply Alembic migrations on start and from ``python run.py migrate``.

Every package's migration hangs off ``0001_foundation`` (branches are fine), so we upgrade to
``heads``. On PostgreSQL an advisory lock keeps two instances starting together from
migrating at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_LOGGER = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 7_402_319


def _alembic_config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Any) -> None:
    command.upgrade(_alembic_config(connection), "heads")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_ID})
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_ID})
                await conn.commit()
    _LOGGER.info("database schema is up to date")


def _revision(connection: Any, message: str, rev_id: str, head: str) -> None:
    command.revision(
        _alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id, head=head
    )


async def autogenerate(engine: AsyncEngine, message: str, rev_id: str, head: str = "heads") -> None:
    """Developer helper: write a migration for model changes (see README)."""
    async with engine.connect() as conn:
        await conn.run_sync(_revision, message, rev_id, head)
