"""The one rule for text in requests, on SQLite and PostgreSQL alike.

PostgreSQL refuses a NUL character in a text value (the driver raises, which would be a
500) while SQLite stores it, and no name, note, reason or search term legitimately holds a
control character: a stray one is a paste accident or an attack on whoever reads the text
later (a log line, a CSV, a terminal). So every free-text field of a request model refuses
control characters other than newline and tab — the C0 set, DEL, the C1 set and the
Unicode line and paragraph separators — and the decoder answers 422 naming the field.
Identifiers (``event_id``, usernames) are stricter still: see ``alerts.items.TEXT_PATTERN``.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

_CONTROLS: Final = "\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u2028\\u2029"

PLAIN: Final = msgspec.Meta(
    pattern=f"^[^{_CONTROLS}]*$",
    description="Text; control characters other than newline and tab are refused.",
)
"""Free text: anything but control characters other than newline and tab."""

NOT_BLANK: Final = msgspec.Meta(pattern=f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$")
"""Like :data:`PLAIN`, and at least one character that is not white space."""

Text = Annotated[str, PLAIN]
"""Free text (add a ``msgspec.Meta(max_length=…)`` beside it)."""

NonBlank = Annotated[str, NOT_BLANK]
