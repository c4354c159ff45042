"""Ids in paths that cannot exist are a 404, never a 5xx from the database driver."""

from __future__ import annotations

import pytest

from tests.conftest import AppFactory, login


@pytest.mark.parametrize("raw", ["99999999999999999999", "2147483648", "0", "abc"])
async def test_impossible_ids_are_404(make_client: AppFactory, database_url: str, raw: str) -> None:
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "duty1")
    for path in (
        f"/api/v1/alarms/{raw}",
        f"/api/v1/alarms/{raw}/workflow",
        f"/api/v1/evidence/{raw}",
    ):
        resp = await client.get(path)
        assert resp.status == 404, (path, await resp.text())
        assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.post(
        f"/api/v1/alarms/{raw}/actions",
        json={"action": "acknowledge", "version": 1},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 404
