"""The lifecycle table, tested directly: every transition and every refusal."""

from __future__ import annotations

import pytest

from alerts.transitions import (
    Action,
    Level,
    allowed_actions,
    decide,
    level_above,
    level_of,
)
from center.alarm_vocab import WORKFLOW_STATES, AlarmState
from center.errors import Forbidden, InvalidTransition
from center.models import Role

S, D, C = Level.STREET, Level.DISTRICT, Level.CITY
OK, NO = "ok", "forbidden"

# action -> valid from-states and the state it leads to
EXPECTED_STATES = {
    Action.ACKNOWLEDGE: ({AlarmState.NEW, AlarmState.REOPENED}, AlarmState.ACKNOWLEDGED),
    Action.DISPATCH: ({AlarmState.ACKNOWLEDGED, AlarmState.REOPENED}, AlarmState.DISPATCHED),
    Action.REPORT: ({AlarmState.DISPATCHED}, AlarmState.VERIFYING),
    Action.RESOLVE: ({AlarmState.VERIFYING}, AlarmState.RESOLVED),
    Action.CLOSE: ({AlarmState.RESOLVED}, AlarmState.CLOSED),
    Action.REOPEN: ({AlarmState.RESOLVED, AlarmState.CLOSED}, AlarmState.REOPENED),
    Action.NOTE: (set(WORKFLOW_STATES), None),
}

# (action, actor level) -> outcome for owner = street, district, city
WHO = {
    (Action.ACKNOWLEDGE, S): (OK, OK, OK),
    (Action.ACKNOWLEDGE, D): (NO, OK, OK),  # only once escalated to the district
    (Action.ACKNOWLEDGE, C): (OK, OK, OK),
    (Action.DISPATCH, S): (NO, NO, NO),
    (Action.DISPATCH, D): (NO, OK, OK),
    (Action.DISPATCH, C): (OK, OK, OK),
    (Action.REPORT, S): (OK, OK, OK),  # the street may always report late
    (Action.REPORT, D): (NO, OK, OK),
    (Action.REPORT, C): (NO, NO, OK),
    (Action.RESOLVE, S): (OK, OK, OK),
    (Action.RESOLVE, D): (NO, OK, OK),
    (Action.RESOLVE, C): (NO, NO, OK),
    (Action.CLOSE, S): (OK, NO, NO),  # the owning level or above
    (Action.CLOSE, D): (OK, OK, NO),
    (Action.CLOSE, C): (OK, OK, OK),
    (Action.REOPEN, S): (NO, NO, NO),
    (Action.REOPEN, D): (OK, OK, OK),
    (Action.REOPEN, C): (OK, OK, OK),
    (Action.NOTE, S): (OK, OK, OK),
    (Action.NOTE, D): (OK, OK, OK),
    (Action.NOTE, C): (OK, OK, OK),
}


def test_table_covers_every_action_and_level() -> None:
    assert {a for a, _ in WHO} == set(Action)
    assert len(WHO) == len(Action) * len(Level)


@pytest.mark.parametrize(("action", "actor"), sorted(WHO))
def test_who_may_do_what(action: Action, actor: Level) -> None:
    valid_from, to_state = EXPECTED_STATES[action]
    state = sorted(valid_from)[0]
    for owner, outcome in zip((S, D, C), WHO[(action, actor)], strict=True):
        if outcome == OK:
            decision = decide(state, action, actor, owner)
            assert decision.to_state == (to_state or state)
            assert decision.from_state == state
        else:
            with pytest.raises(Forbidden):
                decide(state, action, actor, owner)


@pytest.mark.parametrize("action", list(Action))
def test_wrong_state_is_invalid_transition(action: Action) -> None:
    valid_from, to_state = EXPECTED_STATES[action]
    for state in sorted(WORKFLOW_STATES):
        if state in valid_from:
            assert decide(state, action, C, C).to_state == (to_state or state)
        else:
            with pytest.raises(InvalidTransition) as err:
                decide(state, action, C, C)
            assert err.value.code == "invalid_transition" and err.value.status == 409
            assert err.value.details["state"] == state


def test_role_refusal_comes_before_state_refusal() -> None:
    # A street officer may never dispatch: that is what they learn, whatever the state.
    with pytest.raises(Forbidden):
        decide(AlarmState.CLOSED, Action.DISPATCH, S, S)


def test_full_happy_path_and_reopen() -> None:
    path = [
        (Action.ACKNOWLEDGE, C, AlarmState.ACKNOWLEDGED),
        (Action.DISPATCH, C, AlarmState.DISPATCHED),
        (Action.REPORT, S, AlarmState.VERIFYING),
        (Action.RESOLVE, S, AlarmState.RESOLVED),
        (Action.CLOSE, D, AlarmState.CLOSED),
        (Action.REOPEN, C, AlarmState.REOPENED),
        (Action.DISPATCH, D, AlarmState.DISPATCHED),
    ]
    state = AlarmState.NEW
    for action, actor, expected in path:
        state = decide(state, action, actor, D).to_state
        assert state == expected


def test_levels_and_allowed_actions() -> None:
    assert level_of(Role.DUTY) == C and level_of("street") == S and level_of("district") == D
    assert level_of(Role.ADMIN) is None and level_of("wall") is None and level_of("x") is None
    assert level_above(S) == D and level_above(D) == C and level_above(C) is None
    assert allowed_actions(AlarmState.NEW, C, S) == ["acknowledge", "note"]
    assert allowed_actions(AlarmState.NEW, D, S) == ["note"]
    assert allowed_actions(AlarmState.DISPATCHED, S, S) == ["report", "note"]
    assert allowed_actions(AlarmState.RESOLVED, S, S) == ["close", "note"]
    assert allowed_actions(AlarmState.RESOLVED, D, S) == ["close", "reopen", "note"]
