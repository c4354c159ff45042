"""The ``alarms`` topic: alarm events filtered per recipient by jurisdiction and privacy.

An officer gets the alarms of their subtree with the full alarm JSON; a wall screen (or any
device principal) gets them masked — the allowlisted fields of
:data:`center.dashboard.view.TICKER_FIELDS` and a masked name (张*三), never an ID number or
a phone number. The snapshot is the open alarms of the scope from the live projection, read
with its bus position in one synchronous step.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

from center.authz import JurisdictionPath, within
from center.bus import Bus, BusMessage
from center.dashboard.projection import DashboardProjection
from center.jurisdictions import JurisdictionTree
from center.topics import Topic
from web.ws.bus_topic import BusTopic, Position
from web.ws.topics import SubscribeRequest

ALARMS_ACTION = "alarms.stream"


class AlarmsTopic(BusTopic):
    def __init__(
        self, bus: Bus, projection: DashboardProjection, tree: JurisdictionTree, limit: int
    ) -> None:
        super().__init__("alarms", ALARMS_ACTION, bus)
        self._projection = projection
        self._tree = tree
        self._limit = limit
        roots = tree.roots()
        self._root: JurisdictionPath = (roots[0].id,) if roots else ()

    def _visible(self, scope: JurisdictionPath, data: dict[str, Any]) -> bool:
        if scope == self._root:
            return True
        node = str(data.get("street_id") or data.get("district_id") or "")
        return bool(node) and within(scope, self._tree.path(node))

    def alarm_view(self, data: dict[str, Any], masked: bool) -> dict[str, Any]:
        if not masked:
            return data
        alarm_id = str(data.get("id", ""))
        overdue = self._projection.state.alarms.is_overdue(alarm_id)
        return self._projection.renderer.ticker_item(data, True, overdue)

    def render(self, msg: BusMessage, view: Hashable) -> Any | None:
        scope, masked = _unpack(view)
        if not self._visible(scope, msg.data):
            return None
        return self.alarm_view(msg.data, masked)

    async def snapshot(self, req: SubscribeRequest, view: Hashable) -> tuple[Position, Any]:
        scope, masked = _unpack(view)
        position = self._projection.position(Topic.ALARMS) or ("", 0)
        entries, total = self._projection.open_alarms(scope, self._limit)
        alarms = [self.alarm_view(e.data, masked) for e in entries]
        return position, {"alarms": alarms, "total": total, "truncated": total > len(alarms)}


def _unpack(view: Hashable) -> tuple[JurisdictionPath, bool]:
    scope, masked = cast("tuple[JurisdictionPath, bool]", view)
    return scope, masked
