"""Severity per alarm kind and supervision level.

Defaults follow the seed centers' practice: SOS and tamper are critical for everyone; what a
strict (严管) subject does weighs more than the same thing from a lenient one. The
``alarm_severity`` setting overrides entries: ``kind=severity`` for every level or
``kind.level=severity`` for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from alerts.models import AlarmKind, Severity

_LEVELS: Final = ("strict", "normal", "lenient")

# kind -> (strict, normal, lenient)
_DEFAULTS: Final[Mapping[str, tuple[Severity, Severity, Severity]]] = {
    AlarmKind.SOS: (Severity.CRITICAL,) * 3,
    AlarmKind.TAMPER: (Severity.CRITICAL,) * 3,
    AlarmKind.NO_CHECKIN: (Severity.HIGH, Severity.MEDIUM, Severity.LOW),
    AlarmKind.LATE_CHECKIN: (Severity.MEDIUM, Severity.LOW, Severity.LOW),
    AlarmKind.OUT_OF_BOUNDS: (Severity.CRITICAL, Severity.HIGH, Severity.HIGH),
    AlarmKind.OVERDUE_RETURN: (Severity.HIGH, Severity.HIGH, Severity.MEDIUM),
    AlarmKind.SEPARATION: (Severity.HIGH, Severity.MEDIUM, Severity.MEDIUM),
    AlarmKind.LOW_BATTERY: (Severity.LOW,) * 3,
    AlarmKind.DEVICE_OFFLINE: (Severity.HIGH, Severity.MEDIUM, Severity.LOW),
    AlarmKind.SPOTCHECK_MISSED: (Severity.HIGH, Severity.MEDIUM, Severity.MEDIUM),
    AlarmKind.FACE_MISMATCH: (Severity.HIGH, Severity.HIGH, Severity.HIGH),
}


class SeverityTable:
    """``severity(kind, level)``; built from the setting (or its live value), then a dict
    lookup."""

    __slots__ = ("_table",)

    def __init__(self, overrides: str = "") -> None:
        self.load(overrides)

    def load(self, overrides: str) -> None:
        """Rebuild from ``overrides`` in place (a live change: every holder sees it); a bad
        entry raises ValueError and leaves the table as it was."""
        table: dict[tuple[str, str], str] = {}
        for kind, values in _DEFAULTS.items():
            for level, sev in zip(_LEVELS, values, strict=True):
                table[(str(kind), level)] = str(sev)
        for raw in overrides.split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            kind, _, level = key.strip().partition(".")
            value = value.strip()
            if not sep or kind not in {str(k) for k in AlarmKind}:
                raise ValueError(
                    f"alarm_severity entry {item!r}: expected kind=severity with a kind among "
                    f"{', '.join(AlarmKind)}"
                )
            if value not in {str(s) for s in Severity}:
                raise ValueError(
                    f"alarm_severity entry {item!r}: severity must be one of {', '.join(Severity)}"
                )
            if level and level not in _LEVELS:
                raise ValueError(
                    f"alarm_severity entry {item!r}: level must be one of {', '.join(_LEVELS)}"
                )
            for lv in (level,) if level else _LEVELS:
                table[(kind, lv)] = value
        self._table = table

    def severity(self, kind: str, level: str) -> str:
        return self._table.get((kind, level)) or self._table.get((kind, "normal"), "medium")
