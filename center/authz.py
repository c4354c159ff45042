"""Authorization: one deny-by-default pure function.

``authorize(principal, action, scope)`` answers whether ``principal`` may perform ``action``
on a resource that belongs to jurisdiction ``scope``. It does no I/O: handlers look up the
resource's jurisdiction path and ask. Actions not listed in :data:`POLICY` are denied for
everyone, so a new endpoint is closed until someone writes its rule here.

A jurisdiction path is the tuple of ids from the city down (``("4403", "440304",
"440304001")``). A principal may act on a resource inside its own subtree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from center.models import Role

JurisdictionPath = tuple[str, ...]


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    DEVICE = "device"
    GUEST = "guest"  # family members and subjects joining with a code (later issues)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str
    name: str
    role: Role
    jurisdiction: JurisdictionPath
    # Extra, role-specific grants (e.g. the one visit a family member may join).
    grants: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """How this principal is named in the audit log."""
        return f"{self.kind}:{self.name}"

    def __repr__(self) -> str:
        return f"<Principal {self.actor} {self.role}@{'/'.join(self.jurisdiction)}>"


class Scope(StrEnum):
    """How an action relates to the resource's jurisdiction."""

    GLOBAL = "global"  # no jurisdiction check (the role alone decides)
    SUBTREE = "subtree"  # resource must be inside the principal's jurisdiction


_STAFF_READ: Final = frozenset({Role.ADMIN, Role.DUTY, Role.DISTRICT, Role.STREET})
_OPERATORS: Final = frozenset({Role.DUTY, Role.DISTRICT, Role.STREET})
_ANY_STAFF: Final = frozenset({Role.ADMIN, Role.DUTY, Role.DISTRICT, Role.STREET, Role.VISIT_STAFF})

# action -> (roles allowed, how the jurisdiction is checked)
POLICY: Final[dict[str, tuple[frozenset[Role], Scope]]] = {
    "me.read": (frozenset(Role), Scope.GLOBAL),
    "jurisdictions.read": (_ANY_STAFF | {Role.WALL}, Scope.GLOBAL),
    "subjects.read": (_STAFF_READ, Scope.SUBTREE),
    "subjects.write": (frozenset({Role.ADMIN}), Scope.SUBTREE),
    "users.manage": (frozenset({Role.ADMIN}), Scope.SUBTREE),
    "credentials.manage": (frozenset({Role.ADMIN}), Scope.SUBTREE),
    "audit.read": (frozenset({Role.ADMIN}), Scope.GLOBAL),
    "checkins.ingest": (frozenset({Role.INTEGRATION}), Scope.SUBTREE),
    "device_events.ingest": (frozenset({Role.INTEGRATION}), Scope.SUBTREE),
    "locations.ingest": (frozenset({Role.INTEGRATION}), Scope.SUBTREE),
    "alarms.read": (_STAFF_READ, Scope.SUBTREE),
    "alarms.act": (_OPERATORS, Scope.SUBTREE),
    "suppressions.manage": (frozenset({Role.DUTY, Role.DISTRICT}), Scope.SUBTREE),
    "leaves.manage": (_OPERATORS, Scope.SUBTREE),
    "dashboard.read": (_STAFF_READ | {Role.WALL}, Scope.SUBTREE),
    # the live alarm feed: walls get it masked (web/ws/alarms_topic.py)
    "alarms.stream": (_STAFF_READ | {Role.WALL}, Scope.SUBTREE),
    "wall.pair": (frozenset({Role.ADMIN, Role.DUTY}), Scope.SUBTREE),
    "duty.manage": (frozenset({Role.DUTY, Role.ADMIN}), Scope.SUBTREE),
    # duty workflow (issue 6): who is on duty (console, wall), signing on/off
    "duty.read": (_STAFF_READ | {Role.WALL}, Scope.SUBTREE),
    "duty.sign": (_OPERATORS, Scope.SUBTREE),
    "reports.read": (_STAFF_READ, Scope.SUBTREE),
    "rooms.create": (_ANY_STAFF, Scope.SUBTREE),
    "rooms.read": (_ANY_STAFF, Scope.SUBTREE),
    "rooms.join": (_ANY_STAFF | {Role.FAMILY, Role.SUBJECT}, Scope.SUBTREE),
    "rooms.monitor": (frozenset({Role.DUTY, Role.VISIT_STAFF, Role.DISTRICT}), Scope.SUBTREE),
    "rooms.end": (_ANY_STAFF, Scope.SUBTREE),
    "recordings.read": (_STAFF_READ | {Role.VISIT_STAFF}, Scope.SUBTREE),
    # device check (/check): an echo room of one's own. Family members and subjects will get
    # it through a "rooms.check" grant on their guest principal (a code), not by role alone.
    "rooms.check": (_ANY_STAFF | {Role.FAMILY, Role.SUBJECT}, Scope.GLOBAL),
}

# Roles that act on their own session or code only; never on a jurisdiction subtree.
_NO_SUBTREE: Final = frozenset({Role.FAMILY, Role.SUBJECT})


def within(principal_path: JurisdictionPath, resource_path: JurisdictionPath) -> bool:
    """True when ``resource_path`` is ``principal_path`` or below it."""
    if not principal_path:
        return False
    return resource_path[: len(principal_path)] == principal_path


def authorize(
    principal: Principal | None,
    action: str,
    resource: JurisdictionPath | None = None,
    *,
    grant: str | None = None,
) -> bool:
    """Deny by default. ``resource`` is the resource's jurisdiction path (None: no resource
    yet, e.g. listing — the handler must then scope its query to the principal). ``grant``
    names a specific object (``"room:<id>"``) that family/subject principals need a grant for.
    """
    if principal is None:
        return False
    rule = POLICY.get(action)
    if rule is None:
        return False
    roles, scope = rule
    if principal.role not in roles:
        return False
    if principal.role in _NO_SUBTREE:
        return grant is not None and grant in principal.grants
    if scope is Scope.GLOBAL or resource is None:
        return True
    return within(principal.jurisdiction, resource)


def role_allowed(principal: Principal | None, action: str) -> bool:
    """The role part of :func:`authorize` alone: may this kind of caller reach the endpoint
    at all? The handler then checks the specific resource (jurisdiction or grant)."""
    if principal is None:
        return False
    rule = POLICY.get(action)
    return rule is not None and principal.role in rule[0]
