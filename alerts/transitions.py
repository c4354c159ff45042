"""The alarm lifecycle as one pure table: (state, action, actor level, owner level) → state.

``new → acknowledged → dispatched → verifying → resolved → closed``, plus ``reopened``.
Who may act depends on the actor's level in the three-level chain (city center, district
bureau, street office) and, for some actions, on the level that currently *owns* the alarm:
an alarm starts owned by the subject's street office and escalation moves ownership up when
a deadline is missed. Rules that are bound to the owner need the actor's level to be at or
above the owner's ("the level that owns the alarm or above").

The states are :class:`center.alarm_vocab.AlarmState` (one enum for the engine, the
workflow, the dashboard, the queue and the reports); ``suppressed`` is not a workflow state.

The function does no I/O, so the whole table is tested directly; the workflow service loads
the row, asks :func:`decide`, then writes with optimistic concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from center.alarm_vocab import OPEN_STATES as OPEN_STATES
from center.alarm_vocab import UNACKNOWLEDGED as UNACKNOWLEDGED
from center.alarm_vocab import WORKFLOW_STATES, AlarmState
from center.errors import Forbidden, InvalidTransition
from center.models import Role


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    REPORT = "report"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    NOTE = "note"


class Level(StrEnum):
    STREET = "street"
    DISTRICT = "district"
    CITY = "city"


RANK: Final = {Level.STREET: 0, Level.DISTRICT: 1, Level.CITY: 2}


def level_above(level: Level) -> Level | None:
    return {Level.STREET: Level.DISTRICT, Level.DISTRICT: Level.CITY}.get(level)


class Disposition(StrEnum):
    """处置结果 (DESIGN.md §2)."""

    FALSE_ALARM = "false_alarm"
    EXCUSED = "excused"
    WARNED = "warned"
    FORMAL_WARNING = "formal_warning"
    REFERRED_POLICE = "referred_police"
    REVOCATION = "revocation"


ROLE_LEVEL: Final = {
    Role.DUTY: Level.CITY,
    Role.DISTRICT: Level.DISTRICT,
    Role.STREET: Level.STREET,
}


def level_of(role: Role | str) -> Level | None:
    """The chain level a role acts at; None for roles that never act on alarms."""
    try:
        return ROLE_LEVEL.get(Role(role))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Rule:
    """``from_states`` the action is valid in; ``to_state`` None leaves the state (a note).
    ``levels`` may ever do it. Of those, ``when_reached`` levels only once escalation has
    brought the alarm up to them (owner at or above the actor); ``owner_or_above`` requires
    the actor at or above the owner."""

    from_states: frozenset[AlarmState]
    to_state: AlarmState | None
    levels: frozenset[Level]
    when_reached: frozenset[Level] = frozenset()
    owner_or_above: bool = False
    needs_note: bool = False
    needs_disposition: bool = False


_ALL_LEVELS: Final = frozenset(Level)

RULES: Final[dict[Action, Rule]] = {
    # A new alarm shows at the city center and at the street office; either acknowledges.
    # The district bureau steps in once the alarm has been escalated to it.
    Action.ACKNOWLEDGE: Rule(
        frozenset(UNACKNOWLEDGED),
        AlarmState.ACKNOWLEDGED,
        _ALL_LEVELS,
        when_reached=frozenset({Level.DISTRICT}),
    ),
    Action.DISPATCH: Rule(
        frozenset({AlarmState.ACKNOWLEDGED, AlarmState.REOPENED}),
        AlarmState.DISPATCHED,
        frozenset({Level.CITY, Level.DISTRICT}),
        when_reached=frozenset({Level.DISTRICT}),
    ),
    # The street office verifies on the ground (and may always report late); a level above
    # reports only once the alarm has been escalated to it.
    Action.REPORT: Rule(
        frozenset({AlarmState.DISPATCHED}),
        AlarmState.VERIFYING,
        _ALL_LEVELS,
        when_reached=frozenset({Level.DISTRICT, Level.CITY}),
        needs_note=True,
    ),
    Action.RESOLVE: Rule(
        frozenset({AlarmState.VERIFYING}),
        AlarmState.RESOLVED,
        _ALL_LEVELS,
        when_reached=frozenset({Level.DISTRICT, Level.CITY}),
        needs_note=True,
        needs_disposition=True,
    ),
    Action.CLOSE: Rule(
        frozenset({AlarmState.RESOLVED}), AlarmState.CLOSED, _ALL_LEVELS, owner_or_above=True
    ),
    Action.REOPEN: Rule(
        frozenset({AlarmState.RESOLVED, AlarmState.CLOSED}),
        AlarmState.REOPENED,
        frozenset({Level.CITY, Level.DISTRICT}),
        needs_note=True,
    ),
    Action.NOTE: Rule(WORKFLOW_STATES, None, _ALL_LEVELS, needs_note=True),
}


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    from_state: AlarmState
    to_state: AlarmState

    @property
    def changes_state(self) -> bool:
        return self.from_state is not self.to_state


def decide(
    state: AlarmState | str, action: Action | str, actor: Level, owner: Level | str
) -> Decision:
    """The new state, or :class:`Forbidden` (role/ownership) / :class:`InvalidTransition`.

    The role is checked first so that a caller who may never do ``action`` learns that rather
    than the alarm's state; ownership is checked last because it depends on escalation.
    """
    act = Action(action)
    cur = AlarmState(state)
    own = Level(owner)
    rule = RULES[act]
    if actor not in rule.levels:
        raise Forbidden(
            f"the {actor} level may not {act} alarms",
            details={"action": str(act), "level": str(actor)},
        )
    if cur not in rule.from_states:
        allowed = sorted(str(s) for s in rule.from_states)
        raise InvalidTransition(
            f"cannot {act} an alarm that is {cur} (allowed from: {', '.join(allowed)})",
            details={"state": str(cur), "action": str(act), "allowed_from": allowed},
        )
    if (actor in rule.when_reached and RANK[own] < RANK[actor]) or (
        rule.owner_or_above and RANK[actor] < RANK[own]
    ):
        raise Forbidden(
            f"the alarm is owned by the {own} level; the {actor} level may not {act} it",
            details={"action": str(act), "level": str(actor), "owner_level": str(own)},
        )
    return Decision(act, cur, rule.to_state or cur)


def allowed_actions(state: AlarmState | str, actor: Level, owner: Level | str) -> list[Action]:
    """What the console offers for this alarm and this officer."""
    out = []
    for act in Action:
        try:
            decide(state, act, actor, owner)
        except (Forbidden, InvalidTransition):
            continue
        out.append(act)
    return out
