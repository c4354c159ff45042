"""The wall page and its pairing API over a real server (the browser side is in tests/e2e)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.conftest import AppFactory, demo_credentials, login


async def _code(client: TestClient, csrf: str, **body: str) -> dict[str, str]:
    resp = await client.post(
        "/api/v1/wall/pairing-codes", json=body or {"name": "north"}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_page_is_public_and_checks_the_token(demo_client: TestClient) -> None:
    token = demo_credentials(demo_client)["wall_token"]
    resp = await demo_client.get(f"/wall?token={token}", allow_redirects=False)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "echarts.min.js" in await resp.text()
    resp = await demo_client.get("/wall?token=dt_nope", allow_redirects=False)
    assert resp.status == 401  # a page saying "not paired", not a redirect to /login
    key = demo_credentials(demo_client)["integration_key"]
    assert (await demo_client.get(f"/wall?token={key}")).status == 401
    assert (await demo_client.get("/wall")).status == 200


async def test_pairing_code_once(demo_client: TestClient) -> None:
    csrf = await login(demo_client, "duty1")
    code = (await _code(demo_client, csrf))["code"]
    demo_client.session.cookie_jar.clear()
    resp = await demo_client.post("/api/v1/wall/pair", json={"code": code})
    assert resp.status == 200
    token = (await resp.json())["token"]
    assert token.startswith("dt_")
    resp = await demo_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    me = await resp.json()
    assert me["role"] == "wall" and me["jurisdiction"]["id"] == "4403"
    resp = await demo_client.post("/api/v1/wall/pair", json={"code": code})
    assert resp.status == 401


async def test_pairing_code_scope_roles_expiry_and_throttle(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, login_max_failures=3)
    csrf = await login(client, "duty1")
    body = await _code(client, csrf, name="futian", jurisdiction="440304")
    resp = await client.post(
        "/api/v1/wall/pairing-codes",
        json={"name": "x", "jurisdiction": "0"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 404
    await fake_clock.advance(601)
    client.session.cookie_jar.clear()
    resp = await client.post("/api/v1/wall/pair", json={"code": body["code"]})
    assert resp.status == 401  # expired
    for _ in range(2):
        resp = await client.post("/api/v1/wall/pair", json={"code": "000000"})
    assert resp.status == 429
    # a street officer may not create wall codes
    client.session.cookie_jar.clear()
    csrf = await login(client, "street1")
    resp = await client.post(
        "/api/v1/wall/pairing-codes", json={"name": "x"}, headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 403
