"""A relative's websockets close when its visit ends (close code 4002 ``visit_ended``).

A guest session is refused once its visit has ended, but a socket authenticated before
stays open until the page goes away: it would keep hearing the ``visits`` topic and could
keep signalling. Every instance listens to ``visit.state`` on the bus (the visit may end on
another instance: a timer, staff elsewhere) and closes its own connections of ``guest``
principals that hold the grant ``visit:<id>`` (and forgets their cached principal, so the
guest token is refused at once rather than after the cache period). The closing runs on one kept task, after the
bus callbacks: the ``visits`` topic has queued the final ``visit.state`` on the socket by
then, and :meth:`Connection.close` lets queued frames go out before the close frame, so the
page sees the end before the close.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from center.authz import PrincipalKind
from center.bus import BusMessage, Unsubscribe
from center.topics import Topic
from center.visits.models import VisitState
from center.visits.service import EVENT_STATE
from web import keys
from web.principals import forget_grant
from web.ws.errors import CLOSE_VISIT_ENDED
from web.ws.hub import hub_of

_LOGGER = logging.getLogger(__name__)


class VisitSocketCloser:
    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._ended: asyncio.Queue[int] = asyncio.Queue()
        self._unsubscribe: Unsubscribe | None = None
        self.closed = 0

    def __repr__(self) -> str:
        return f"VisitSocketCloser({self.closed} closed)"

    def start(self) -> None:
        self._unsubscribe = self._app[keys.BUS].subscribe(Topic.VISITS, self._on_bus)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_bus(self, msg: BusMessage) -> None:
        data = msg.data
        if msg.type != EVENT_STATE or not isinstance(data, dict):
            return
        if data.get("state") == VisitState.ENDED and isinstance(data.get("id"), int):
            self._ended.put_nowait(data["id"])

    async def run(self) -> None:
        while True:
            visit_id = await self._ended.get()
            try:
                await self.close_guests(visit_id)
            except Exception:
                _LOGGER.exception("closing the sockets of visit %s failed", visit_id)

    async def close_guests(self, visit_id: int) -> int:
        """Close this instance's guest connections of ``visit_id``; returns how many."""
        grant = f"visit:{visit_id}"
        forget_grant(self._app, grant)
        hit = [
            conn
            for conn in list(hub_of(self._app).connections)
            if conn.principal is not None
            and conn.principal.kind == PrincipalKind.GUEST
            and grant in conn.principal.grants
        ]
        for conn in hit:
            conn.logger.info("closing: visit %s ended", visit_id)
        await asyncio.gather(
            *(conn.close(CLOSE_VISIT_ENDED, b"visit_ended") for conn in hit),
            return_exceptions=True,
        )
        self.closed += len(hit)
        return len(hit)
