"""The alarm read API (staff session, scoped to the caller's jurisdiction).

Thin handlers: the queries are :mod:`alerts.alarm_queries`; items are
:class:`alerts.serialize.AlarmOut`, the same shape the bus carries. Suppressed alarms are
listed only when asked for (``state=suppressed`` or ``suppressed=true``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from alerts import alarm_queries
from alerts.actions import MAX_ID
from alerts.alarm_queries import AlarmDetail, AlarmListQuery, AlarmPage
from center.authz import Action
from web import keys
from web.contract import contract
from web.policy import SESSION, policy, principal_of


class AlarmPath(msgspec.Struct):
    alarm_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


@policy(Action.ALARMS_READ, auth=(SESSION,))
@contract(
    "List alarms",
    query=AlarmListQuery,
    response=AlarmPage,
    errors=(404,),
    description="The caller's jurisdiction, newest first. A district or street outside it "
    "is 404 not_found.",
)
async def list_alarms(request: web.Request, *, query: AlarmListQuery) -> AlarmPage:
    async with request.app[keys.SESSIONMAKER]() as session:
        return await alarm_queries.list_alarms(
            session, request.app[keys.TREE], principal_of(request), query
        )


@policy(Action.ALARMS_READ, auth=(SESSION,))
@contract(
    "One alarm with its timeline, recent check-ins and fixes",
    path=AlarmPath,
    response=AlarmDetail,
    errors=(404,),
)
async def get_alarm(request: web.Request, *, path: AlarmPath) -> AlarmDetail:
    now = request.app[keys.CLOCK].now()
    async with request.app[keys.SESSIONMAKER]() as session:
        return await alarm_queries.alarm_detail(
            session, request.app[keys.TREE], principal_of(request), path.alarm_id, now
        )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/alarms", list_alarms)
    app.router.add_get("/api/v1/alarms/{alarm_id}", get_alarm)
