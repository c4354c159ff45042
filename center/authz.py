"""Authorization: one deny-by-default pure function.

``authorize(principal, action, scope)`` answers whether ``principal`` may perform ``action``
on a resource that belongs to jurisdiction ``scope``. It does no I/O: handlers look up the
resource's jurisdiction path and ask. Actions not listed in :data:`POLICY` are denied for
everyone, so a new endpoint is closed until someone writes its rule here. Actions are an
:class:`Action` enum: ``@policy`` and ``@command`` coerce what they are given with
``Action(value)`` when the module is imported, so a misspelt action fails at start-up instead
of silently denying every caller.

A jurisdiction path is the tuple of ids from the city down (``("4403", "440304",
"440304001")``). A principal may act on a resource inside its own subtree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, cast

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
    # How people see the principal (a user's display name; empty for keys and devices).
    display_name: str = ""

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


class Action(StrEnum):
    """What a caller wants to do; every member has a rule in :data:`POLICY` (a test checks)."""

    ME_READ = "me.read"
    JURISDICTIONS_READ = "jurisdictions.read"
    SUBJECTS_READ = "subjects.read"
    SUBJECTS_WRITE = "subjects.write"
    USERS_MANAGE = "users.manage"
    CREDENTIALS_MANAGE = "credentials.manage"
    AUDIT_READ = "audit.read"
    CHECKINS_INGEST = "checkins.ingest"
    DEVICE_EVENTS_INGEST = "device_events.ingest"
    LOCATIONS_INGEST = "locations.ingest"
    ALARMS_READ = "alarms.read"
    ALARMS_ACT = "alarms.act"
    SUPPRESSIONS_MANAGE = "suppressions.manage"
    LEAVES_MANAGE = "leaves.manage"
    DASHBOARD_READ = "dashboard.read"
    ALARMS_STREAM = "alarms.stream"
    WALL_PAIR = "wall.pair"
    DUTY_MANAGE = "duty.manage"
    DUTY_READ = "duty.read"
    DUTY_SIGN = "duty.sign"
    REPORTS_READ = "reports.read"
    ROOMS_CREATE = "rooms.create"
    ROOMS_READ = "rooms.read"
    ROOMS_JOIN = "rooms.join"
    ROOMS_MONITOR = "rooms.monitor"
    ROOMS_END = "rooms.end"
    RECORDINGS_READ = "recordings.read"
    ROOMS_CHECK = "rooms.check"
    SPOTCHECKS_READ = "spotchecks.read"
    SPOTCHECKS_RUN = "spotchecks.run"
    SPOTCHECKS_ANSWER = "spotchecks.answer"
    VISITS_READ = "visits.read"
    VISITS_BOOK = "visits.book"
    VISITS_APPROVE = "visits.approve"
    VISITS_RUN = "visits.run"
    FACES_READ = "faces.read"
    FACES_MANAGE = "faces.manage"


_STAFF_READ: Final = frozenset({Role.ADMIN, Role.DUTY, Role.DISTRICT, Role.STREET})
_OPERATORS: Final = frozenset({Role.DUTY, Role.DISTRICT, Role.STREET})
_ANY_STAFF: Final = frozenset({Role.ADMIN, Role.DUTY, Role.DISTRICT, Role.STREET, Role.VISIT_STAFF})

# action -> (roles allowed, how the jurisdiction is checked)
POLICY: Final[dict[Action, tuple[frozenset[Role], Scope]]] = {
    Action.ME_READ: (frozenset(Role), Scope.GLOBAL),
    Action.JURISDICTIONS_READ: (_ANY_STAFF | {Role.WALL}, Scope.GLOBAL),
    Action.SUBJECTS_READ: (_STAFF_READ, Scope.SUBTREE),
    Action.SUBJECTS_WRITE: (frozenset({Role.ADMIN}), Scope.SUBTREE),
    Action.USERS_MANAGE: (frozenset({Role.ADMIN}), Scope.SUBTREE),
    Action.CREDENTIALS_MANAGE: (frozenset({Role.ADMIN}), Scope.SUBTREE),
    Action.AUDIT_READ: (frozenset({Role.ADMIN}), Scope.GLOBAL),
    Action.CHECKINS_INGEST: (frozenset({Role.INTEGRATION}), Scope.SUBTREE),
    Action.DEVICE_EVENTS_INGEST: (frozenset({Role.INTEGRATION}), Scope.SUBTREE),
    Action.LOCATIONS_INGEST: (frozenset({Role.INTEGRATION}), Scope.SUBTREE),
    Action.ALARMS_READ: (_STAFF_READ, Scope.SUBTREE),
    Action.ALARMS_ACT: (_OPERATORS, Scope.SUBTREE),
    Action.SUPPRESSIONS_MANAGE: (frozenset({Role.DUTY, Role.DISTRICT}), Scope.SUBTREE),
    Action.LEAVES_MANAGE: (_OPERATORS, Scope.SUBTREE),
    Action.DASHBOARD_READ: (_STAFF_READ | {Role.WALL}, Scope.SUBTREE),
    # the live alarm feed: walls get it masked (web/ws/alarms_topic.py)
    Action.ALARMS_STREAM: (_STAFF_READ | {Role.WALL}, Scope.SUBTREE),
    Action.WALL_PAIR: (frozenset({Role.ADMIN, Role.DUTY}), Scope.SUBTREE),
    Action.DUTY_MANAGE: (frozenset({Role.DUTY, Role.ADMIN}), Scope.SUBTREE),
    # duty workflow (issue 6): who is on duty (console, wall), signing on/off
    Action.DUTY_READ: (_STAFF_READ | {Role.WALL}, Scope.SUBTREE),
    Action.DUTY_SIGN: (_OPERATORS, Scope.SUBTREE),
    Action.REPORTS_READ: (_STAFF_READ, Scope.SUBTREE),
    Action.ROOMS_CREATE: (_ANY_STAFF, Scope.SUBTREE),
    Action.ROOMS_READ: (_ANY_STAFF, Scope.SUBTREE),
    Action.ROOMS_JOIN: (_ANY_STAFF | {Role.FAMILY, Role.SUBJECT}, Scope.SUBTREE),
    Action.ROOMS_MONITOR: (frozenset({Role.DUTY, Role.VISIT_STAFF, Role.DISTRICT}), Scope.SUBTREE),
    Action.ROOMS_END: (_ANY_STAFF, Scope.SUBTREE),
    Action.RECORDINGS_READ: (_STAFF_READ | {Role.VISIT_STAFF}, Scope.SUBTREE),
    # device check (/check): an echo room of one's own. Family members and subjects will get
    # it through a "rooms.check" grant on their guest principal (a code), not by role alone.
    Action.ROOMS_CHECK: (_ANY_STAFF | {Role.FAMILY, Role.SUBJECT}, Scope.GLOBAL),
    # video spot-checks (issue 13): staff read and run them in their subtree; a subject reads
    # and answers only its own, through its "subject:<id>" grant (see SUBJECT_GRANTS).
    Action.SPOTCHECKS_READ: (_STAFF_READ | {Role.SUBJECT}, Scope.SUBTREE),
    Action.SPOTCHECKS_RUN: (_OPERATORS, Scope.SUBTREE),
    Action.SPOTCHECKS_ANSWER: (frozenset({Role.SUBJECT}), Scope.GLOBAL),
    # prison family visits (issue 14): prisons are not in the jurisdiction tree; the visit
    # service narrows visit staff to the prisons linked to them (center/visits/service.py).
    # a relative's guest session reads its own visit through its "visit:<id>" grant
    Action.VISITS_READ: (
        frozenset({Role.ADMIN, Role.DUTY, Role.VISIT_STAFF, Role.FAMILY}),
        Scope.GLOBAL,
    ),
    Action.VISITS_BOOK: (frozenset({Role.VISIT_STAFF}), Scope.GLOBAL),
    Action.VISITS_APPROVE: (frozenset({Role.VISIT_STAFF}), Scope.GLOBAL),
    Action.VISITS_RUN: (frozenset({Role.VISIT_STAFF}), Scope.GLOBAL),
    # face verification (issue 15): staff read a subject's baseline and face checks in their
    # subtree; officers enrol, approve and delete baseline photos.
    Action.FACES_READ: (_STAFF_READ, Scope.SUBTREE),
    Action.FACES_MANAGE: (_OPERATORS, Scope.SUBTREE),
}


def subject_grants(subject_id: str | None) -> frozenset[str]:
    """What a ``subject`` login may touch: its own spot-checks (``subject:<id>``), the
    ``spotchecks`` websocket topic (filtered to its own) and a device check of its own."""
    if not subject_id:
        return frozenset()
    return frozenset({f"subject:{subject_id}", "spotchecks", Action.ROOMS_CHECK})


# Roles that act on their own session or code only; never on a jurisdiction subtree.
_NO_SUBTREE: Final = frozenset({Role.FAMILY, Role.SUBJECT})


def within(principal_path: JurisdictionPath, resource_path: JurisdictionPath) -> bool:
    """True when ``resource_path`` is ``principal_path`` or below it."""
    if not principal_path:
        return False
    return resource_path[: len(principal_path)] == principal_path


def authorize(
    principal: Principal | None,
    action: Action | str,
    resource: JurisdictionPath | None = None,
    *,
    grant: str | None = None,
) -> bool:
    """Deny by default (an unknown action string too: ``POLICY`` is keyed by :class:`Action`,
    whose members hash like their values). ``resource`` is the resource's jurisdiction path (None: no resource
    yet, e.g. listing — the handler must then scope its query to the principal). ``grant``
    names a specific object (``"room:<id>"``) that family/subject principals need a grant for.
    """
    if principal is None:
        return False
    rule = POLICY.get(cast(Action, action))
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


def role_allowed(principal: Principal | None, action: Action | str) -> bool:
    """The role part of :func:`authorize` alone: may this kind of caller reach the endpoint
    at all? The handler then checks the specific resource (jurisdiction or grant)."""
    if principal is None:
        return False
    rule = POLICY.get(cast(Action, action))
    return rule is not None and principal.role in rule[0]
