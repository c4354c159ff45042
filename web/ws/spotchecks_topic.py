"""The ``spotchecks`` topic: staff see spot-checks of their jurisdiction, a subject its own.

The subject's page hears its phone ring here (``spotcheck.state`` with ``ringing``) and the
challenge to show (``spotcheck.challenge``); staff consoles and the officer's view follow
the same events for their subtree. A subject's events are trimmed to what its page needs
(no officer's note, no home coordinates). The snapshot is the open spot-checks in view.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final, cast

from alerts.spotcheck import SpotCheckService
from alerts.spotcheck_models import OPEN_STATES
from alerts.spotcheck_view import bus_data
from center.authz import Action, Principal, within
from center.bus import Bus, BusMessage
from center.jurisdictions import JurisdictionTree
from center.models import Role
from web.ws.bus_topic import BusTopic, Position
from web.ws.topics import SubscribeRequest

_SUBJECT_HIDDEN: Final = ("note", "reason", "started_by", "home", "distance_m")


class SpotchecksTopic(BusTopic):
    def __init__(self, bus: Bus, tree: JurisdictionTree, service: SpotCheckService) -> None:
        super().__init__("spotchecks", Action.SPOTCHECKS_READ, bus)
        self._tree = tree
        self._service = service

    def view_key(self, principal: Principal, scope: tuple[str, ...]) -> Hashable:
        if principal.role == Role.SUBJECT:
            own = sorted(
                g.removeprefix("subject:") for g in principal.grants if g.startswith("subject:")
            )
            return ("subject", tuple(own))
        return ("staff", scope)

    def _visible(self, view: Hashable, data: dict[str, Any]) -> bool:
        kind, value = cast("tuple[str, tuple[str, ...]]", view)
        if kind == "subject":
            return data.get("subject_id") in value
        node = str(data.get("street_id") or data.get("district_id") or "")
        return bool(node) and node in self._tree and within(value, self._tree.path(node))

    def render(self, msg: BusMessage, view: Hashable) -> Any | None:
        data = msg.data
        if not isinstance(data, dict) or not self._visible(view, data):
            return None
        if view[0] == "subject":  # type: ignore[index]
            return {k: v for k, v in data.items() if k not in _SUBJECT_HIDDEN}
        return data

    async def snapshot(self, req: SubscribeRequest, view: Hashable) -> tuple[Position, Any]:
        position = await self._bus.position(req.topic)
        open_ = [
            bus_data(o)
            for o in await self._service.open_views()
            if o.state in OPEN_STATES and self._visible(view, bus_data(o))
        ]
        if view[0] == "subject":  # type: ignore[index]
            open_ = [{k: v for k, v in d.items() if k not in _SUBJECT_HIDDEN} for d in open_]
        return position, {"spotchecks": open_}
