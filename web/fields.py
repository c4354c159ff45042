"""Field types shared by the declared request models of the HTTP layer.

Text fields use the one rule of :mod:`center.text` (re-exported here): no control
characters other than newline and tab, on both databases.
"""

from __future__ import annotations

from typing import Any, Final

from center.text import NOT_BLANK, PLAIN, NonBlank, Text

__all__ = ["MAX_PAGE", "NOT_BLANK", "PG_INT_MAX", "PLAIN", "NonBlank", "Text", "column_length"]

PG_INT_MAX: Final = 2_147_483_647
"""The largest id an ``INTEGER`` column holds; a larger one in a path names no object."""

MAX_PAGE: Final = 1_000_000
"""The highest page number a list accepts (beyond it a list is a mistake, not a request)."""


def column_length(attr: Any) -> int:
    """The declared length of a ``String(n)`` column (``column_length(Subject.name)``), so a
    request model's ``maxLength`` is the database's, written once."""
    length = attr.property.columns[0].type.length
    assert isinstance(length, int), attr
    return length
