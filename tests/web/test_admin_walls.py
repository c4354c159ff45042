"""The admin's wall screens (web/admin_walls.py): pending codes, paired screens with their last
sighting, and unpairing that disconnects the wall at once."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from tests.conftest import AppFactory, demo_credentials, login
from tests.web.test_revocation import _closed_with_revoked, _socket


async def _walls(client: TestClient) -> dict:  # type: ignore[type-arg]
    resp = await client.get("/api/v1/admin/walls")
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_pair_list_and_unpair_disconnects_the_wall(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "admin")
    h = {"X-CSRF-Token": csrf}
    resp = await client.post("/api/v1/wall/pairing-codes", json={"name": "hall-east"}, headers=h)
    assert resp.status == 201, await resp.text()
    code = (await resp.json())["code"]
    listed = await _walls(client)
    assert [p["name"] for p in listed["pending"]] == ["hall-east"]
    assert code not in json.dumps(listed)  # the code is shown once, at creation

    client.session.cookie_jar.clear()
    token = (await (await client.post("/api/v1/wall/pair", json={"code": code})).json())["token"]
    ws = await _socket(client, token)
    csrf = await login(client, "admin")
    h = {"X-CSRF-Token": csrf}
    listed = await _walls(client)
    assert listed["pending"] == []
    wall = next(w for w in listed["items"] if w["name"] == "hall-east")
    assert wall["online"] is True and wall["last_seen_at"] and wall["revoked_at"] is None
    assert wall["paired_by"] == "user:admin"
    assert token not in json.dumps(listed)
    assert any(w["name"] == "demo-wall" for w in listed["items"])  # tokens made as keys too

    resp = await client.delete(f"/api/v1/admin/walls/{wall['id']}", headers=h)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["revoked_at"]
    await _closed_with_revoked(ws)
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    again = await client.delete(f"/api/v1/admin/walls/{wall['id']}", headers=h)
    assert again.status == 200  # idempotent, audited once
    wall = next(w for w in (await _walls(client))["items"] if w["id"] == wall["id"])
    assert wall["revoked_at"] and wall["online"] is False

    page = await (await client.get(f"/api/v1/audit?object=wall:{wall['id']}")).json()
    [entry] = [e for e in page["items"] if e["action"] == "wall.unpair"]
    details = json.loads(entry["details"])
    assert details["before"]["paired"] is True and details["after"]["paired"] is False
    assert entry["actor"] == "user:admin"

    # an integration key is not a wall; unknown ids are 404 and change nothing
    keys_list = await (await client.get("/api/v1/keys")).json()
    api_key = next(k["id"] for k in keys_list["items"] if k["kind"] == "api_key")
    assert (await client.delete(f"/api/v1/admin/walls/{api_key}", headers=h)).status == 404
    assert (await client.delete("/api/v1/admin/walls/nope", headers=h)).status == 404
    integration = demo_credentials(client)["integration_key"]
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {integration}"})
    assert resp.status == 200


async def test_walls_are_for_administrators(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "duty1")
    assert (await client.get("/api/v1/admin/walls")).status == 403
    resp = await client.delete("/api/v1/admin/walls/x", headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
