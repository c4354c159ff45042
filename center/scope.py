"""A principal's jurisdiction as SQL conditions, and the one rule for what lies outside it.

Every scoped list and lookup (alarms, the console queue, subjects, leaves, suppressions)
narrows its query with :func:`within`. A filter that names a district or street outside the
caller's subtree is answered exactly like one that names no place at all — 404
``not_found`` — so a caller cannot learn which ids exist beyond its own area; the same holds
for single objects (:func:`visible_or_404`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from center.authz import Action, JurisdictionPath, Principal, authorize
from center.errors import NotFound
from center.jurisdictions import JurisdictionTree


@dataclass(frozen=True, slots=True)
class ScopeColumns:
    """The columns that place a row in the tree (its district and its street)."""

    district: Any
    street: Any


def within(
    principal: Principal,
    tree: JurisdictionTree,
    action: Action,
    cols: ScopeColumns,
    *,
    district: str | None = None,
    street: str | None = None,
) -> list[Any]:
    """SQL conditions: the caller's subtree, narrowed by the requested district and street
    (each must lie inside it, else :class:`NotFound`)."""
    for value, name in ((district, "district"), (street, "street")):
        if value is None:
            continue
        if value not in tree or not authorize(principal, action, tree.path(value)):
            raise NotFound(f"no such {name} in your jurisdiction", details={"field": name})
    conds = own_subtree(principal.jurisdiction, cols)
    if district:
        conds.append(cols.district == district)
    if street:
        conds.append(cols.street == street)
    return conds


def own_subtree(path: JurisdictionPath, cols: ScopeColumns) -> list[Any]:
    """Conditions for rows inside ``path`` (none for the city: it sees everything)."""
    if len(path) >= 3:
        return [cols.street == path[2]]
    if len(path) == 2:
        return [cols.district == path[1]]
    return []


def visible_or_404(
    principal: Principal, tree: JurisdictionTree, action: Action, street_id: str | None, what: str
) -> None:
    """Raise :class:`NotFound` unless an object placed at ``street_id`` is in scope."""
    if (
        street_id is None
        or street_id not in tree
        or not authorize(principal, action, tree.path(street_id))
    ):
        raise NotFound(f"no such {what} in your jurisdiction")
