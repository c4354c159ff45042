"""The range of years the center accepts in any date or time it is sent.

Python's ``date`` ends at 9999-12-31, so arithmetic near either end (the next day of a
report, a week's roster, the UTC form of ``9999-12-31T23:59:59-14:00``) overflows; and no
supervision record, shift, leave or report of this center is dated before the system
existed or a lifetime ahead. One documented range, checked where requests are decoded,
keeps every such value a 422 naming its field instead of a 500 deep inside.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 2099


def year_problem(value: date) -> str | None:
    """Why ``value`` (a date, or a datetime — aware ones judged in UTC too) is out of the
    accepted range, or ``None``."""
    years = [value.year]
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            years.append(value.astimezone(UTC).year)
        except OverflowError:
            return f"must be in the years {FIRST_YEAR}-{LAST_YEAR}"
    if any(not FIRST_YEAR <= y <= LAST_YEAR for y in years):
        return f"must be in the years {FIRST_YEAR}-{LAST_YEAR}"
    return None
