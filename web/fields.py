"""Field types shared by the declared request models.

PostgreSQL refuses a NUL character in a text value (the driver raises, which would be a 500),
and no name, reason or search term legitimately holds one, so every free-text field of a
request model is declared with :data:`NO_NUL` and a NUL is a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

NO_NUL: Final = msgspec.Meta(pattern=r"^[^\x00]*$")

Text = Annotated[str, NO_NUL]
"""Free text without NUL characters (add a ``msgspec.Meta(max_length=…)`` beside it)."""

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


NOT_BLANK: Final = msgspec.Meta(pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
"""Like :data:`NO_NUL`, and at least one character that is not white space."""
