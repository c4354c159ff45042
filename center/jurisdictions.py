"""The jurisdiction tree (city → district → street), cached in memory.

The tree is tiny (a city has a few dozen nodes) and changes only by administration, so every
scope check reads it from memory instead of walking parent rows in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from center.authz import JurisdictionPath
from center.models import Jurisdiction


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    parent_id: str | None
    level: str
    name: str
    lat: float | None
    lon: float | None
    sort: int


class JurisdictionTree:
    def __init__(self, nodes: list[Node]) -> None:
        self._nodes = {n.id: n for n in nodes}
        self._children: dict[str | None, list[Node]] = {}
        for n in sorted(nodes, key=lambda n: (n.sort, n.id)):
            self._children.setdefault(n.parent_id, []).append(n)
        self._paths: dict[str, JurisdictionPath] = {}
        for n in nodes:
            self._paths[n.id] = self._compute_path(n.id)

    def _compute_path(self, node_id: str) -> JurisdictionPath:
        path: list[str] = []
        cur: str | None = node_id
        seen: set[str] = set()
        while cur is not None and cur not in seen:
            seen.add(cur)
            path.append(cur)
            node = self._nodes.get(cur)
            cur = node.parent_id if node else None
        return tuple(reversed(path))

    @classmethod
    async def load(cls, session: AsyncSession) -> JurisdictionTree:
        rows = (await session.execute(select(Jurisdiction))).scalars().all()
        return cls([Node(r.id, r.parent_id, r.level, r.name, r.lat, r.lon, r.sort) for r in rows])

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def path(self, node_id: str) -> JurisdictionPath:
        """Ids from the root down to ``node_id``; unknown ids give a path of their own."""
        return self._paths.get(node_id, (node_id,))

    def children(self, node_id: str | None) -> list[Node]:
        return list(self._children.get(node_id, []))

    def roots(self) -> list[Node]:
        return self.children(None)

    def by_level(self, level: str) -> list[Node]:
        return [n for n in self._nodes.values() if n.level == level]

    def descendants(self, node_id: str, level: str | None = None) -> list[str]:
        """Ids in the subtree of ``node_id`` (itself included), optionally of one level."""
        out: list[str] = []
        stack = [node_id]
        while stack:
            cur = stack.pop()
            node = self._nodes.get(cur)
            if node is None:
                continue
            if level is None or node.level == level:
                out.append(cur)
            stack.extend(c.id for c in self._children.get(cur, []))
        return out

    def district_of(self, node_id: str) -> str | None:
        for nid in self.path(node_id):
            node = self._nodes.get(nid)
            if node is not None and node.level == "district":
                return nid
        return None

    def as_tree(self, root_id: str | None = None) -> list[dict[str, Any]]:
        """Nested JSON for ``GET /api/v1/jurisdictions``."""

        def build(n: Node) -> dict[str, Any]:
            return {
                "id": n.id,
                "name": n.name,
                "level": n.level,
                "lat": n.lat,
                "lon": n.lon,
                "children": [build(c) for c in self._children.get(n.id, [])],
            }

        if root_id is not None:
            node = self._nodes.get(root_id)
            return [build(node)] if node else []
        return [build(n) for n in self.roots()]
