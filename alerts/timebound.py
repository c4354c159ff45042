"""What leaves and suppressions share: both are time-bound staff records with a reason.

The checks here are the ones a request model cannot state alone (they need the clock or
another field), raised in the same 422 shape the declared models use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center import audit
from center.errors import ValidationFailed

R = TypeVar("R")

RECENT_LIMIT: Final = 100
"""How many of a subject's latest leaves (or suppressions) a listing shows."""


def invalid(name: str, message: str) -> ValidationFailed:
    """A 422 naming ``name`` (``details.field`` and ``details.fields``, as everywhere)."""
    return ValidationFailed(message, details={"field": name, "fields": {name: message}})


def storable(value: datetime, name: str) -> datetime:
    """``value`` unchanged if the column can store it: a time at the very edge of the calendar
    whose UTC form does not exist (year 1 or 9999 with an offset) is a 422, not a 500."""
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise invalid(name, f"'{name}' is out of range") from None
    return value


def ends_after(start: datetime, end: datetime, now: datetime, name: str) -> None:
    """``end`` must be in the future and after ``start``."""
    if end <= max(start, now):
        raise invalid(name, f"'{name}' must be in the future and after 'starts_at'")


async def store_audited(
    sessionmaker: async_sessionmaker[AsyncSession],
    row: R,
    *,
    actor: str,
    action: str,
    subject_id: str,
    details: Mapping[str, Any],
    id_key: str,
    now: datetime,
) -> R:
    """Insert ``row`` and its audit entry (``details`` plus the new id under ``id_key``) in
    one transaction: a record without its audit entry, or the reverse, cannot exist."""
    async with sessionmaker() as session:
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action=action,
            target_type="subject",
            target_id=subject_id,
            details={id_key: row.id, **details},  # type: ignore[attr-defined]
            at=now,
        )
        await session.commit()
    return row


async def recent(
    sessionmaker: async_sessionmaker[AsyncSession], model: Any, subject_id: str
) -> Sequence[Any]:
    """The subject's latest :data:`RECENT_LIMIT` records of ``model``, newest first."""
    async with sessionmaker() as session:
        return (
            await session.scalars(
                select(model)
                .where(model.subject_id == subject_id)
                .order_by(model.id.desc())
                .limit(RECENT_LIMIT)
            )
        ).all()
