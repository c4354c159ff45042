"""The typed vocabulary of a real app: every action a route or a websocket command names
has a rule in POLICY; bus topics and event types are enums whose values are the wire names."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from center.authz import POLICY, Action
from center.topics import Event, Topic
from web.policy import get_policy
from web.ws.hub import hub_of


async def test_every_route_and_command_action_has_a_rule(demo_client: TestClient) -> None:
    app = demo_client.app
    named: dict[str, object] = {}
    for route in app.router.routes():
        pol = get_policy(route.handler)
        if pol is not None and pol.action is not None:
            named[f"{route.method} {route.resource.canonical if route.resource else ''}"] = (
                pol.action
            )
    hub = hub_of(app)
    for type_ in hub.commands.types:
        spec = hub.commands.get(type_)
        assert spec is not None
        if spec.action is not None:
            named[f"ws {type_}"] = spec.action
    assert len(named) > 30
    assert {where: a for where, a in named.items() if a not in POLICY} == {}
    assert all(isinstance(a, Action) for a in named.values()), named


def test_bus_names_are_their_wire_strings() -> None:
    assert Topic.ALARMS == "alarms" and f"{Topic.CHECKINS}" == "checkins"
    assert Event.ALARM_RAISED == "alarm.raised" and Event.CHECKIN_RECORDED == "checkin.recorded"
