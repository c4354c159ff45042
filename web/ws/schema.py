"""A small schema for command messages, checked once at the edge by the dispatcher.

Handlers declare ``{"topic": Field(str), "since": Field(dict, required=False)}`` beside
themselves (like Home Assistant's voluptuous schemas) and then read the message without
re-validating. Unknown keys are refused: a typo in an optional field should fail loudly, not
silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from center.errors import InvalidFormat

ENVELOPE_KEYS: Final = frozenset({"id", "type"})


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its JSON type(s), whether it must be present, and an optional extra check
    (``check(value) -> None | str``, returning what is wrong)."""

    types: type | tuple[type, ...]
    required: bool = True
    check: Callable[[Any], str | None] | None = None

    def problem(self, value: Any) -> str | None:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        if isinstance(value, bool) and bool not in types:
            return f"must be {_names(types)}, not a boolean"
        if not isinstance(value, types):
            return f"must be {_names(types)}, not {type(value).__name__}"
        return self.check(value) if self.check is not None else None


Schema = Mapping[str, Field]


def _names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
    names |= {list: "an array", bool: "a boolean"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def validate(schema: Schema, msg: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidFormat` naming every problem (``details``: field → problem)."""
    problems: dict[str, str] = {}
    for key in msg:
        if key not in schema and key not in ENVELOPE_KEYS:
            problems[key] = "unknown field"
    for key, spec in schema.items():
        if key not in msg:
            if spec.required:
                problems[key] = "required"
            continue
        problem = spec.problem(msg[key])
        if problem:
            problems[key] = problem
    if problems:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        raise InvalidFormat(f"bad {msg.get('type')} message: {listed}", details=problems)


def positive_int(value: Any) -> str | None:
    return None if value >= 0 else "must not be negative"


def since_check(value: Any) -> str | None:
    """``since`` is ``{"epoch": str, "seq": int >= 0}``."""
    epoch, seq = value.get("epoch"), value.get("seq")
    if not isinstance(epoch, str) or not isinstance(seq, int) or isinstance(seq, bool):
        return 'must be {"epoch": string, "seq": integer}'
    if seq < 0:
        return "seq must not be negative"
    if set(value) - {"epoch", "seq"}:
        return "only epoch and seq are allowed"
    return None
