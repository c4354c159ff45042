"""The ``visits`` topic: visit staff hear their own prisons' visits, admin and duty every
prison, a relative's guest session its one visit.

Prisons lie outside the jurisdiction tree, so the recipient class of a visit-staff login
is the login itself, and the prisons it works for are looked up (once per login) when it
subscribes. Events: ``visit.state`` (the summary, without names), ``visit.warning``,
``visit.text`` and ``visit.mute`` — what both sides' pages show. The snapshot is the visits
under way (``waiting`` and ``live``) in view.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

from center.authz import Action, Principal
from center.bus import Bus, BusMessage
from center.models import Role
from center.visits.service import VisitService
from center.visits.view import bus_data
from web.ws.bus_topic import BusTopic, Position
from web.ws.connection import Connection
from web.ws.topics import SubscribeRequest

_ALL = ("all",)


class VisitsTopic(BusTopic):
    def __init__(self, bus: Bus, service: VisitService) -> None:
        super().__init__("visits", Action.VISITS_READ, bus)
        self._service = service
        self._prisons: dict[Hashable, frozenset[str]] = {}

    def view_key(self, principal: Principal, scope: tuple[str, ...]) -> Hashable:
        if principal.role == Role.FAMILY:
            own = sorted(
                int(g.removeprefix("visit:")) for g in principal.grants if g.startswith("visit:")
            )
            return ("visit", tuple(own))
        if principal.role in (Role.ADMIN, Role.DUTY):
            return _ALL
        return ("staff", str(principal.kind), principal.id)

    async def subscribe(self, conn: Connection, req: SubscribeRequest) -> None:
        principal = conn.principal_required
        view = self.view_key(principal, req.scope)
        if view[0] == "staff":  # type: ignore[index]
            async with self._service.sessionmaker() as session:
                prisons = await self._service.prisons_of(session, principal)
            self._prisons[view] = prisons if prisons is not None else frozenset()
        await super().subscribe(conn, req)

    def _visible(self, view: Hashable, data: dict[str, Any]) -> bool:
        if view == _ALL:
            return True
        kind, *rest = cast("tuple[Any, ...]", view)
        if kind == "visit":
            return data.get("visit_id", data.get("id")) in rest[0]
        return data.get("prison_id") in self._prisons.get(view, frozenset())

    def render(self, msg: BusMessage, view: Hashable) -> Any | None:
        data = msg.data
        if not isinstance(data, dict) or not self._visible(view, data):
            return None
        return data

    async def snapshot(self, req: SubscribeRequest, view: Hashable) -> tuple[Position, Any]:
        position = await self._bus.position(req.topic)
        under_way = [
            bus_data(v) for v in await self._service.under_way() if self._visible(view, bus_data(v))
        ]
        return position, {"visits": under_way}
