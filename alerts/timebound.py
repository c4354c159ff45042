"""What leaves and suppressions share: both are time-bound staff records with a reason.

The checks here are the ones a request model cannot state alone (they need the clock or
another field), raised in the same 422 shape the declared models use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from center.errors import ValidationFailed

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
