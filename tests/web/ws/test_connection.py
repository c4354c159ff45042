"""The envelope, auth phase, errors and limits of /ws (DESIGN.md §4)."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestClient

from tests.conftest import AppFactory, demo_credentials, login
from tests.web.ws.conftest import authed, connect, street_of, wall_token


async def test_auth_with_device_token_then_subscribe(demo_client: TestClient) -> None:
    ws = await connect(demo_client)
    res = await ws.call("auth", token=wall_token(demo_client))
    assert res["success"] and res["result"]["role"] == "wall"
    assert {"dashboard", "alarms"} <= set(res["result"]["topics"])
    sub = await ws.call("subscribe", topic="dashboard")
    assert sub["success"], sub
    result = sub["result"]
    assert result["recovered"] is False and result["seq"] >= 0 and result["epoch"]
    assert result["snapshot"]["subjects"]["total"] == 2000
    await ws.close()


async def test_auth_with_session_cookie(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    ws = await authed(demo_client)
    res = await ws.call("ping")
    assert res["success"] and "now" in res["result"]
    await ws.close()


async def test_session_cookie_from_another_origin_is_refused(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    ws = await connect(demo_client, headers={"Origin": "http://evil.example"})
    res = await ws.call("auth")
    assert not res["success"] and res["error"]["code"] == "forbidden"
    await ws.closed.wait()
    assert ws.ws.close_code == 1008


async def test_bad_json_and_unknown_command_keep_the_connection(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    await ws.ws.send_str("{not json")
    err = await ws.wait_for(lambda msgs: msgs[-1] if msgs[-1]["success"] is False else None)
    assert err["id"] is None and err["error"]["code"] == "invalid_format"
    await ws.ws.send_str("[1, 2]")
    await ws.ws.send_bytes(b"\x00\x01")
    res = await ws.call("no.such.command")
    assert res["error"]["code"] == "unknown_command"
    assert "subscribe" in res["error"]["details"]["commands"]
    res = await ws.call("subscribe")  # no topic
    assert res["error"]["code"] == "invalid_format"
    assert res["error"]["details"] == {"field": "topic", "fields": {"topic": "required"}}
    res = await ws.call("subscribe", topic="dashboard", bogus=1)
    assert res["error"]["code"] == "invalid_format"
    assert res["error"]["details"] == {"field": "bogus", "fields": {"bogus": "unknown field"}}
    res = await ws.call("subscribe", topic=7, since={"epoch": "x", "seq": -1})
    assert res["error"]["code"] == "invalid_format"
    assert set(res["error"]["details"]["fields"]) == {"topic", "since.seq"}
    res = await ws.call("subscribe", topic="dashboard", since={"epoch": "x", "seq": 1, "n": 2})
    assert list(res["error"]["details"]["fields"]) == ["since"]
    assert "unknown field" in res["error"]["details"]["fields"]["since"]
    res = await ws.call("ping")
    assert res["success"]
    errors = [m for m in ws.messages if m.get("success") is False and m["id"] is None]
    assert len(errors) == 3  # bad JSON, not an object, binary
    await ws.close()


async def test_ids_must_increase(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    await ws.ws.send_json({"id": 10, "type": "ping"})
    await ws.result(10)
    await ws.ws.send_json({"id": 10, "type": "ping"})
    await ws.ws.send_json({"id": 9, "type": "ping"})
    await ws.wait_for(lambda msgs: len([m for m in msgs if m.get("id") in (9, 10)]) >= 3)
    codes = [m["error"]["code"] for m in ws.messages if m.get("success") is False]
    assert codes == ["id_reuse", "id_reuse"]
    await ws.ws.send_json({"id": "11", "type": "ping"})
    await ws.ws.send_json({"id": True, "type": "ping"})
    await ws.wait_for(lambda msgs: len([m for m in msgs if m.get("id") is None]) >= 2)
    ws.next_id = 11
    assert (await ws.call("ping"))["success"]
    await ws.close()


async def test_oversize_frame_closes_with_1009(make_client: AppFactory) -> None:
    client = await make_client(demo=True, ws_max_frame_bytes=4096)
    ws = await authed(client, wall_token(client))
    await ws.ws.send_str('{"id": 2, "type": "ping", "pad": "' + "x" * 5000 + '"}')
    await ws.closed.wait()
    assert ws.ws.close_code == 1009


async def test_64k_default_limit(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    res = await ws.call("ping", pad="x" * 60_000)  # under the limit: a schema error, no close
    assert res["error"]["code"] == "invalid_format"
    await ws.ws.send_str('{"id": 99, "type": "ping", "pad": "' + "x" * 70_000 + '"}')
    await ws.closed.wait()
    assert ws.ws.close_code == 1009


async def test_no_auth_in_time_closes_with_auth_timeout(make_client: AppFactory) -> None:
    client = await make_client(demo=True, ws_auth_timeout_s=0.3)
    ws = await connect(client)
    await ws.closed.wait()
    assert ws.ws.close_code == 1008
    assert ws.messages[-1]["error"]["code"] == "auth_timeout"


async def test_commands_before_auth_are_refused(demo_client: TestClient) -> None:
    ws = await connect(demo_client)
    res = await ws.call("subscribe", topic="dashboard")
    assert res["error"]["code"] == "unauthorized"
    res = await ws.call("auth", token=wall_token(demo_client))
    assert res["success"]
    await ws.close()


async def test_wrong_token_closes(demo_client: TestClient) -> None:
    ws = await connect(demo_client)
    res = await ws.call("auth", token="dt_not-a-real-token")
    assert res["error"]["code"] == "unauthorized"
    await ws.closed.wait()
    assert ws.ws.close_code == 1008
    ws = await connect(demo_client)
    res = await ws.call("auth")  # no token, no cookie
    assert res["error"]["code"] == "unauthorized"


async def test_wrong_scope_is_forbidden(demo_client: TestClient) -> None:
    creds = demo_credentials(demo_client)
    await login(demo_client, "street1")
    ws = await authed(demo_client)
    own = street_of(demo_client, "street1")
    other = street_of(demo_client, "street2")
    res = await ws.call("subscribe", topic="alarms", jurisdiction="440305")
    assert res["error"]["code"] == "forbidden"
    res = await ws.call("subscribe", topic="alarms", jurisdiction=other)
    assert res["error"]["code"] == "forbidden"
    res = await ws.call("subscribe", topic="alarms", jurisdiction=own)
    assert res["success"]
    res = await ws.call("subscribe", topic="no-such-topic")
    assert res["error"]["code"] == "not_found"
    res = await ws.call("subscribe", topic="dashboard", jurisdiction="999999")
    assert res["error"]["code"] == "not_found"
    await ws.close()
    # An integration key authenticates but may not read live data.
    ws = await authed(demo_client, creds["integration_key"])
    for topic in ("dashboard", "alarms", "duty"):
        res = await ws.call("subscribe", topic=topic)
        assert res["error"]["code"] == "forbidden", topic
    await ws.close()
    # A wall may read the dashboard and the (masked) alarms, not the duty topic.
    ws = await authed(demo_client, wall_token(demo_client))
    assert (await ws.call("subscribe", topic="duty"))["error"]["code"] == "forbidden"
    assert (await ws.call("subscribe", topic="alarms"))["success"]
    await ws.close()


async def test_unsubscribe(demo_client: TestClient) -> None:
    ws = await authed(demo_client, wall_token(demo_client))
    sub = await ws.send("subscribe", topic="dashboard")
    await ws.result(sub)
    assert (await ws.call("unsubscribe", subscription=sub))["success"]
    res = await ws.call("unsubscribe", subscription=sub)
    assert res["error"]["code"] == "not_subscribed"
    res = await ws.call("auth", token=wall_token(demo_client))
    assert res["error"]["code"] == "bad_request"
    await ws.close()


async def test_websockets_are_tracked_and_closed_on_shutdown(make_client: AppFactory) -> None:
    from web import keys

    client = await make_client(demo=True)
    ws = await authed(client, wall_token(client))
    assert len(client.app[keys.WEBSOCKETS]) == 1
    await client.server.close()
    await ws.closed.wait()
    assert ws.ws.close_code == aiohttp.WSCloseCode.GOING_AWAY


_DOWN_REDIS = "redis://127.0.0.1:1/0"
"""Nothing listens on port 1: the RedisBus starts degraded and every read or publish fails."""


async def test_bus_outage_is_unavailable_and_keeps_the_connection(
    make_client: AppFactory,
) -> None:
    client = await make_client(demo=True, redis_url=_DOWN_REDIS)
    await login(client, "duty1")
    ws = await authed(client)
    res = await ws.call("subscribe", topic="duty")  # reads the bus position from Redis
    assert not res["success"]
    assert res["error"] == {
        "code": "unavailable",
        "message": "the event bus is unavailable; retry shortly",
    }
    assert (await ws.call("ping"))["success"]
    await ws.close()
