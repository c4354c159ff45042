"""Login, sessions, CSRF, throttling and the directory endpoints, over a real server."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.conftest import AppFactory, demo_credentials, login


async def test_login_me_logout(demo_client: TestClient) -> None:
    pw = demo_credentials(demo_client)["users"]["duty1"]["password"]
    resp = await demo_client.post("/api/v1/auth/login", json={"username": "duty1", "password": pw})
    logged_in = await resp.json()
    csrf = logged_in["csrf_token"]
    cookie = demo_client.session.cookie_jar.filter_cookies(demo_client.make_url("/"))
    assert "center_session" in cookie
    resp = await demo_client.get("/api/v1/me")
    me = await resp.json()
    assert me["role"] == "duty" and me["jurisdiction"]["id"] == "4403"
    assert me["user"]["username"] == "duty1"
    # one principal form: the same user (id a string), role and jurisdiction in both
    assert isinstance(me["user"]["id"], str) and me["user"] == logged_in["user"]
    for key in ("principal", "role", "jurisdiction", "home"):
        assert me[key] == logged_in[key], key
    assert me["csrf_token"] == csrf and logged_in["expires_at"]
    # ... and the websocket's auth result carries the same form
    token = cookie["center_session"].value
    async with demo_client.ws_connect("/ws") as ws:
        await ws.send_json({"id": 1, "type": "auth", "token": token})
        reply = await ws.receive_json(timeout=10)
    assert reply["success"], reply
    for key in ("user", "principal", "role", "jurisdiction", "home"):
        assert reply["result"][key] == me[key], key
    # logout needs the CSRF token
    resp = await demo_client.post("/api/v1/auth/logout")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    resp = await demo_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    resp = await demo_client.get("/api/v1/me")
    assert resp.status == 401


async def test_session_cookie_flags(demo_client: TestClient) -> None:
    pw = demo_credentials(demo_client)["users"]["duty1"]["password"]
    resp = await demo_client.post("/api/v1/auth/login", json={"username": "duty1", "password": pw})
    header = resp.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header


async def test_wrong_password_is_401_with_error_shape(demo_client: TestClient) -> None:
    resp = await demo_client.post(
        "/api/v1/auth/login", json={"username": "duty1", "password": "nope"}
    )
    assert resp.status == 401
    body = await resp.json()
    assert body["error"]["code"] == "invalid_credentials" and body["error"]["message"]


async def test_bad_login_bodies_are_4xx(demo_client: TestClient) -> None:
    resp = await demo_client.post(
        "/api/v1/auth/login", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await demo_client.post("/api/v1/auth/login", json=["a"])
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "validation_failed"
    resp = await demo_client.post("/api/v1/auth/login", json={"username": 1, "password": None})
    assert resp.status == 422
    details = (await resp.json())["error"]["details"]
    assert set(details["fields"]) == {"username", "password"}
    resp = await demo_client.post(
        "/api/v1/auth/login", data="x", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415


async def test_throttle_then_lockout_expires(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, login_max_failures=3, login_lockout_s=120)
    for _ in range(2):
        resp = await client.post(
            "/api/v1/auth/login", json={"username": "duty2", "password": "bad"}
        )
        assert resp.status == 401
    resp = await client.post("/api/v1/auth/login", json={"username": "duty2", "password": "bad"})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) == 120
    # Even the right password is refused while locked out.
    pw = demo_credentials(client)["users"]["duty2"]["password"]
    resp = await client.post("/api/v1/auth/login", json={"username": "duty2", "password": pw})
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "too_many_attempts"
    await fake_clock.advance(121)
    resp = await client.post("/api/v1/auth/login", json={"username": "duty2", "password": pw})
    assert resp.status == 200


async def test_failed_and_successful_logins_are_audited(demo_client: TestClient) -> None:
    from sqlalchemy import select

    from center.models import AuditEntry
    from web import keys

    await demo_client.post("/api/v1/auth/login", json={"username": "duty1", "password": "bad"})
    await login(demo_client, "duty1")
    async with demo_client.app[keys.SESSIONMAKER]() as s:
        actions = (
            (await s.execute(select(AuditEntry.action).where(AuditEntry.target_id == "duty1")))
            .scalars()
            .all()
        )
    assert "auth.login_failed" in actions and "auth.login" in actions


async def test_subjects_scoped_to_jurisdiction(demo_client: TestClient) -> None:
    creds = demo_credentials(demo_client)
    street = creds["users"]["street1"]["jurisdiction"]
    await login(demo_client, "street1")
    resp = await demo_client.get("/api/v1/subjects?page_size=500")
    body: dict[str, Any] = await resp.json()
    assert body["total"] > 0
    assert {s["street_id"] for s in body["items"]} == {street}
    # asking for another district is refused, not silently widened: 404, exactly as for a
    # district that does not exist, so a caller cannot probe ids beyond its area
    for district in ("440305", "999999"):
        resp = await demo_client.get(f"/api/v1/subjects?district={district}")
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await demo_client.get("/api/v1/subjects?level=bogus")
    assert resp.status == 422
    resp = await demo_client.get("/api/v1/subjects?page_size=100000")
    assert resp.status == 422


async def test_subjects_filters_and_paging(demo_client: TestClient) -> None:
    await login(demo_client, "duty1")
    resp = await demo_client.get("/api/v1/subjects?page_size=1")
    total = (await resp.json())["total"]
    assert total == 2000
    resp = await demo_client.get("/api/v1/subjects?level=strict&district=440304&page_size=500")
    body = await resp.json()
    assert body["items"] and all(
        s["level"] == "strict" and s["district_id"] == "440304" for s in body["items"]
    )
    p1 = await (await demo_client.get("/api/v1/subjects?page=1&page_size=10")).json()
    p2 = await (await demo_client.get("/api/v1/subjects?page=2&page_size=10")).json()
    assert not {s["id"] for s in p1["items"]} & {s["id"] for s in p2["items"]}


async def test_jurisdiction_tree(demo_client: TestClient) -> None:
    await login(demo_client, "futian")
    body = await (await demo_client.get("/api/v1/jurisdictions")).json()
    city = body["items"][0]
    assert city["name"] == "深圳市"
    names = {d["name"] for d in city["children"]}
    assert {
        "福田区",
        "罗湖区",
        "南山区",
        "宝安区",
        "龙岗区",
        "盐田区",
        "龙华区",
        "坪山区",
        "光明区",
    } <= names
    assert any(n.startswith("大鹏") for n in names)
    assert sum(len(d["children"]) for d in city["children"]) >= 70


async def test_api_key_cannot_use_staff_endpoints(demo_client: TestClient) -> None:
    key = demo_credentials(demo_client)["integration_key"]
    resp = await demo_client.get("/api/v1/subjects", headers={"Authorization": f"Bearer {key}"})
    assert resp.status == 403
    resp = await demo_client.get("/api/v1/me", headers={"Authorization": "Bearer ck_wrong"})
    assert resp.status == 401


async def test_unauthenticated_page_redirects_to_login(demo_client: TestClient) -> None:
    resp = await demo_client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    resp = await demo_client.get("/login")
    assert resp.status == 200 and "登录" in await resp.text()
    resp = await demo_client.get("/login?lang=en")
    assert "Sign in" in await resp.text()


async def test_unknown_api_path_is_json_404(demo_client: TestClient) -> None:
    resp = await demo_client.get("/api/v1/nope")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_every_route_declares_a_policy(demo_client: TestClient) -> None:
    from aiohttp.web_urldispatcher import StaticResource

    from web.policy import get_policy

    missing = [
        route.resource.canonical
        for route in demo_client.app.router.routes()
        if route.resource is not None
        and not isinstance(route.resource, StaticResource)
        and route.method != "HEAD"
        and get_policy(route.handler) is None
    ]
    assert missing == []


async def test_ops_endpoints(demo_client: TestClient) -> None:
    assert (await demo_client.get("/healthz")).status == 200
    resp = await demo_client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["database"] is True
    await demo_client.get("/api/v1/me")
    text = await (await demo_client.get("/metrics")).text()
    assert 'center_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1' in text
    assert "center_websocket_clients" in text
