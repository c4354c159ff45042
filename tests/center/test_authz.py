"""The deny-by-default authorization function, tested directly with a table of cases."""

from __future__ import annotations

import pytest

from center.authz import POLICY, Principal, PrincipalKind, authorize, role_allowed, within
from center.models import Role

CITY = ("4403",)
FUTIAN = ("4403", "440304")
FUTIAN_S1 = ("4403", "440304", "440304001")
FUTIAN_S2 = ("4403", "440304", "440304002")
LUOHU_S1 = ("4403", "440303", "440303001")


def p(
    role: Role,
    path: tuple[str, ...],
    kind: PrincipalKind = PrincipalKind.USER,
    grants: frozenset[str] = frozenset(),
) -> Principal:
    return Principal(
        kind=kind, id="1", name=f"{role}-x", role=role, jurisdiction=path, grants=grants
    )


CASES = [
    # (principal, action, resource, expected)
    (p(Role.DUTY, CITY), "alarms.read", LUOHU_S1, True),
    (p(Role.DUTY, CITY), "alarms.act", FUTIAN_S2, True),
    (p(Role.DISTRICT, FUTIAN), "alarms.read", FUTIAN_S1, True),
    (p(Role.DISTRICT, FUTIAN), "alarms.read", LUOHU_S1, False),
    (p(Role.DISTRICT, FUTIAN), "alarms.read", CITY, False),
    (p(Role.STREET, FUTIAN_S1), "alarms.act", FUTIAN_S1, True),
    (p(Role.STREET, FUTIAN_S1), "alarms.act", FUTIAN_S2, False),
    (p(Role.STREET, FUTIAN_S1), "subjects.read", FUTIAN, False),
    (p(Role.WALL, CITY, PrincipalKind.DEVICE), "dashboard.read", CITY, True),
    (p(Role.WALL, CITY, PrincipalKind.DEVICE), "alarms.act", FUTIAN_S1, False),
    (p(Role.WALL, CITY, PrincipalKind.DEVICE), "subjects.read", FUTIAN_S1, False),
    (p(Role.INTEGRATION, CITY, PrincipalKind.API_KEY), "checkins.ingest", FUTIAN_S1, True),
    (p(Role.INTEGRATION, FUTIAN, PrincipalKind.API_KEY), "checkins.ingest", LUOHU_S1, False),
    (p(Role.INTEGRATION, CITY, PrincipalKind.API_KEY), "alarms.read", FUTIAN_S1, False),
    (p(Role.INTEGRATION, CITY, PrincipalKind.API_KEY), "subjects.read", None, False),
    (p(Role.ADMIN, CITY), "users.manage", FUTIAN, True),
    (p(Role.ADMIN, CITY), "alarms.act", FUTIAN_S1, False),
    (p(Role.DUTY, CITY), "users.manage", FUTIAN, False),
    (p(Role.VISIT_STAFF, CITY), "alarms.read", FUTIAN_S1, False),
    (p(Role.VISIT_STAFF, CITY), "rooms.create", CITY, True),
    (p(Role.FAMILY, ()), "rooms.join", None, False),
    (p(Role.FAMILY, (), grants=frozenset({"room:abc"})), "rooms.join", None, False),
    (p(Role.SUBJECT, ()), "alarms.read", None, False),
    (p(Role.DUTY, CITY), "no.such.action", CITY, False),
    (p(Role.ADMIN, CITY), "no.such.action", CITY, False),
    (None, "me.read", None, False),
    (p(Role.DUTY, ()), "alarms.read", FUTIAN_S1, False),  # a principal without jurisdiction
]


@pytest.mark.parametrize(("principal", "action", "resource", "expected"), CASES)
def test_authorize_table(
    principal: Principal | None, action: str, resource: tuple[str, ...] | None, expected: bool
) -> None:
    assert authorize(principal, action, resource) is expected


def test_grants_for_guests() -> None:
    fam = p(Role.FAMILY, (), grants=frozenset({"room:abc"}))
    assert authorize(fam, "rooms.join", None, grant="room:abc")
    assert not authorize(fam, "rooms.join", None, grant="room:other")
    assert not authorize(fam, "rooms.create", None, grant="room:abc")


def test_within_is_prefix_on_whole_ids() -> None:
    assert within(FUTIAN, FUTIAN_S1)
    assert not within(("4403", "44030"), FUTIAN_S1)
    assert not within((), FUTIAN_S1)


def test_every_action_denies_some_role() -> None:
    """A rule open to every role by accident would be a hole; only me.read is."""
    everyone = [a for a, (roles, _) in POLICY.items() if roles == frozenset(Role)]
    assert everyone == ["me.read"]


def test_role_allowed_ignores_scope_only() -> None:
    assert role_allowed(p(Role.STREET, FUTIAN_S1), "alarms.act")
    assert not role_allowed(p(Role.WALL, CITY), "alarms.act")
    assert not role_allowed(None, "me.read")


def test_actions_are_an_enum_and_every_one_has_a_rule() -> None:
    from center.authz import Action

    assert set(POLICY) == set(Action)
    assert authorize(p(Role.DUTY, CITY), Action.ALARMS_READ, LUOHU_S1)
    assert authorize(p(Role.DUTY, CITY), "alarms.read", LUOHU_S1)  # a member is its string


def test_a_misspelt_action_fails_at_declaration() -> None:
    from web.policy import policy
    from web.ws.registry import command

    with pytest.raises(ValueError, match=r"alarm\.read"):
        policy("alarm.read")
    with pytest.raises(ValueError, match=r"rooms\.joni"):
        command("x.y", action="rooms.joni")(_noop)


async def _noop(conn: object, msg: object) -> None:
    return None
