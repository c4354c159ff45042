"""The ``dashboard`` topic: coalesced state deltas of the live projection.

Deltas come from :class:`center.dashboard.projection.DashboardProjection` at most a few times a second;
each is rendered and serialised once per view (scope × masked) and sent to every subscriber
of that view. Resuming with ``since`` in the same epoch returns one delta with every section
changed since (``recovered: true``); another epoch (a restart, another instance) returns a
snapshot.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from center.authz import Action
from center.dashboard.projection import DashboardProjection
from center.dashboard.view import DashboardView
from center.topics import Event
from web.ws.messages import dumps, event_body, event_frame
from web.ws.topics import SubscribeRequest, Topic, masked_for, subscribe_result

if TYPE_CHECKING:
    from web.ws.connection import Connection

DELTA = Event.DASHBOARD_DELTA


class _DashboardSubscription:
    __slots__ = ("active", "conn", "id", "view")

    def __init__(self, conn: Connection, sub_id: int, view: DashboardView) -> None:
        self.conn = conn
        self.id = sub_id
        self.view = view
        self.active = True

    def __repr__(self) -> str:
        return f"<DashboardSubscription #{self.id} {self.view!r}>"


class DashboardTopic(Topic):
    name = "dashboard"
    action = Action.DASHBOARD_READ

    def __init__(self, projection: DashboardProjection) -> None:
        self._projection = projection
        self._views: dict[DashboardView, set[_DashboardSubscription]] = {}
        self._remove_listener = projection.add_listener(self._on_delta)
        self.frames_encoded = 0

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._views.values())

    async def subscribe(self, conn: Connection, req: SubscribeRequest) -> None:
        p = self._projection
        view = DashboardView(req.scope, masked_for(conn.principal_required))
        changes = p.changes_since(view, *req.since) if req.since is not None else None
        if changes is not None:
            events = []
            if changes:
                events.append(
                    dict(event_body(DELTA, p.seq, changes, epoch=p.epoch, at=time.time()))
                )
            result = subscribe_result(self.name, p.epoch, p.seq, events=events)
        else:
            result = subscribe_result(self.name, p.epoch, p.seq, snapshot=p.snapshot(view))
        sub = _DashboardSubscription(conn, req.msg_id, view)
        self._views.setdefault(view, set()).add(sub)

        def unsubscribe() -> None:
            sub.active = False
            subs = self._views.get(view)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._views[view]

        conn.add_subscription(req.msg_id, unsubscribe)
        conn.send_result(req.msg_id, result)

    def _on_delta(self, seq: int, sections: frozenset[str]) -> None:
        p = self._projection
        at = time.time()
        for view, subs in list(self._views.items()):
            if not subs:
                continue
            encoded = dumps(event_body(DELTA, seq, p.render(view, sections), epoch=p.epoch, at=at))
            self.frames_encoded += 1
            for sub in list(subs):
                sub.conn.send_raw(event_frame(sub.id, encoded))

    async def close(self) -> None:
        self._remove_listener()
        self._views.clear()
