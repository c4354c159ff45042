"""The alarm vocabulary, once: kinds, severities, states and which states count as open.

A leaf module (standard library only) because three packages that may not import each
other read it: the alarm engine and the duty workflow (``alerts``), the live dashboard
(``center``, which must not import ``alerts``) and the web layer (the console queue, the
reports, the HTTP contracts). ``alerts.models`` re-exports these names.

Which states are open is decided by the closed loop (README, "Duty workflow"; the daily
report's definitions): the loop runs from raise to *disposal*, and disposal is the
``resolve`` action (it records the disposition, ends the episode and stops the SLA timers).
A ``resolved`` alarm is therefore **not open** — the dashboard counts it closed, the report
counts its loop as completed — but it still waits for the owner's ``close`` (a sign-off),
so the console queue keeps listing it, as *awaiting close* (:data:`AWAITING_CLOSE`), and
never counts it among the open ones.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class AlarmKind(StrEnum):
    NO_CHECKIN = "no_checkin"
    LATE_CHECKIN = "late_checkin"
    OUT_OF_BOUNDS = "out_of_bounds"
    OVERDUE_RETURN = "overdue_return"
    SEPARATION = "separation"
    TAMPER = "tamper"
    LOW_BATTERY = "low_battery"
    DEVICE_OFFLINE = "device_offline"
    SOS = "sos"
    SPOTCHECK_MISSED = "spotcheck_missed"
    FACE_MISMATCH = "face_mismatch"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_RANK: Final[dict[str, int]] = {s.value: i for i, s in enumerate(Severity)}
"""Most severe first (the console queue's order)."""


class AlarmState(StrEnum):
    """Every state an alarm row can have. The engine creates ``new`` (or ``suppressed``:
    recorded, never raised); the workflow moves the others (``alerts.transitions``)."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    VERIFYING = "verifying"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    SUPPRESSED = "suppressed"


OPEN_STATES: Final[frozenset[AlarmState]] = frozenset(
    {
        AlarmState.NEW,
        AlarmState.ACKNOWLEDGED,
        AlarmState.DISPATCHED,
        AlarmState.VERIFYING,
        AlarmState.REOPENED,
    }
)
"""States in which the closed loop (raise → disposal) is still running."""

CLOSED_STATES: Final[frozenset[AlarmState]] = frozenset(AlarmState) - OPEN_STATES
"""Everything else: disposed (``resolved``), ``closed``, and ``suppressed`` (never raised)."""

UNACKNOWLEDGED: Final[frozenset[AlarmState]] = frozenset({AlarmState.NEW, AlarmState.REOPENED})
"""Open states in which the acknowledge deadline (``ack_due_at``) runs."""

ACKED_STATES: Final[frozenset[AlarmState]] = OPEN_STATES - UNACKNOWLEDGED
"""Open states past acknowledgement (the acknowledge SLA no longer applies)."""

AWAITING_CLOSE: Final[frozenset[AlarmState]] = frozenset({AlarmState.RESOLVED})
"""Disposed but not yet signed off: listed by the console queue, never counted open."""

QUEUE_STATES: Final[frozenset[AlarmState]] = OPEN_STATES | AWAITING_CLOSE
"""What the console queue lists by default."""

WORKFLOW_STATES: Final[frozenset[AlarmState]] = frozenset(AlarmState) - {AlarmState.SUPPRESSED}
"""States the workflow acts in (a suppressed alarm was never raised: nobody acts on it)."""


def is_open(state: str) -> bool:
    """True while the closed loop runs (unknown states are not open)."""
    return state in OPEN_STATES
