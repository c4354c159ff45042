"""Hostile input to the declared auth, directory, supervision, wall-pairing and rooms
endpoints: wrong types for every field, huge numbers, NUL characters, unknown fields on staff
bodies. Every answer is a 4xx in the one error envelope, never a 5xx (on PostgreSQL too,
which refuses NUL in text)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.conftest import AppFactory, login

WRONG: tuple[Any, ...] = ({}, [], 1, -1, 10**30, 1.5e308, True, None, "x\x00y", "")
"""Values sent in place of every field (the right type for none of them, or hostile)."""


async def _assert_4xx(resp: Any, what: object) -> dict[str, Any]:
    assert 400 <= resp.status < 500, (what, resp.status, await resp.text())
    body: dict[str, Any] = await resp.json()
    assert set(body) == {"error"}, (what, body)
    assert isinstance(body["error"]["code"], str) and body["error"]["message"], (what, body)
    return body["error"]


async def _each_field(
    client: TestClient,
    method: str,
    url: str,
    good: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    staff: bool = True,
) -> None:
    """Send ``good`` with each field replaced by each of :data:`WRONG` (those that are
    still valid may succeed), plus an unknown field on a staff body."""
    for field in good:
        for value in WRONG:
            body = {**good, field: value}
            resp = await client.request(method, url, json=body, headers=headers)
            if resp.status < 400:
                continue  # e.g. "" where a default applies
            await _assert_4xx(resp, body)
    for raw in ("[]", "1", '"x"', "null", "{", '{"a":' + "[" * 10_000):
        resp = await client.request(
            method, url, data=raw, headers={**(headers or {}), "Content-Type": "application/json"}
        )
        await _assert_4xx(resp, raw)
    if staff:
        resp = await client.request(method, url, json={**good, "colour": "red"}, headers=headers)
        error = await _assert_4xx(resp, "unknown field")
        assert resp.status == 422 and "colour" in error["details"]["fields"]


async def test_login_and_pairing(make_client: AppFactory, database_url: str) -> None:
    client = await make_client(demo=True, database_url=database_url, login_max_failures=1000)
    await _each_field(
        client, "POST", "/api/v1/auth/login", {"username": "duty1", "password": "x"}, staff=False
    )
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "duty1\x00", "password": "x\x00"}
    )
    error = await _assert_4xx(resp, "nul")
    assert resp.status == 422 and set(error["details"]["fields"]) == {"username", "password"}
    await _each_field(client, "POST", "/api/v1/wall/pair", {"code": "123456"}, staff=False)


async def test_directory_queries_and_paths(make_client: AppFactory, database_url: str) -> None:
    client = await make_client(demo=True, database_url=database_url)
    await login(client, "duty1")
    for name in ("district", "street", "level", "q", "page", "page_size"):
        for value in ("\x00", "x" * 2000, "-1", "1e400", "99999999999999999999", "[]", "{}"):
            resp = await client.get(f"/api/v1/subjects?{name}={quote(value)}")
            if name == "q" and "\x00" not in value and len(value) < 100:
                assert resp.status == 200, (name, value)
                continue
            await _assert_4xx(resp, (name, value))
    for raw in ("%00", "x" * 1000, "99999999999999999999", "%2e%2e"):
        resp = await client.get(f"/api/v1/subjects/{raw}")
        assert resp.status == 404, raw
        await _assert_4xx(resp, raw)
        for tail in ("leaves", "suppressions"):
            resp = await client.get(f"/api/v1/subjects/{raw}/{tail}")
            assert resp.status == 404, raw


async def test_leave_and_suppression_bodies(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "duty1")
    headers = {"X-CSRF-Token": csrf}
    subject = (await (await client.get("/api/v1/subjects?page_size=1")).json())["items"][0]
    soon = (fake_clock.now() + timedelta(days=1)).isoformat()
    base = f"/api/v1/subjects/{subject['id']}"
    leave = {"destination": "广州市", "ends_at": soon, "starts_at": None, "reason": "探亲"}
    await _each_field(client, "POST", f"{base}/leaves", leave, headers=headers)
    suppression = {"reason": "住院", "until": soon, "kinds": ["tamper"]}
    await _each_field(client, "POST", f"{base}/suppressions", suppression, headers=headers)
    # times that parse but make no sense, or sit at the edge of the calendar
    for field, value in (
        ("ends_at", "2026-11-30T18:00:00"),  # no offset
        ("ends_at", "9999-12-31T23:59:59-23:59"),  # beyond year 9999 in UTC
        ("starts_at", "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
        ("ends_at", "2000-01-01T00:00:00+08:00"),  # in the past
        ("ends_at", "not a time"),
    ):
        for url, body in ((f"{base}/leaves", leave), (f"{base}/suppressions", suppression)):
            key = "until" if field == "ends_at" and "suppressions" in url else field
            resp = await client.post(url, json={**body, key: value}, headers=headers)
            error = await _assert_4xx(resp, (url, key, value))
            assert resp.status == 422 and error["details"]["field"] == key, (url, key, value)
    # a subject outside the caller's scope is 404, the same as an unknown one
    luohu = await (await client.get("/api/v1/subjects?district=440303&page_size=1")).json()
    csrf = await login(client, "street1")
    for sid in (luohu["items"][0]["id"], "nobody-at-all"):
        resp = await client.post(
            f"/api/v1/subjects/{sid}/leaves", json=leave, headers={"X-CSRF-Token": csrf}
        )
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_pairing_code_and_rooms(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "duty1")
    headers = {"X-CSRF-Token": csrf}
    await _each_field(
        client,
        "POST",
        "/api/v1/wall/pairing-codes",
        {"name": "north", "jurisdiction": "440304"},
        headers=headers,
    )
    await _each_field(
        client,
        "POST",
        "/api/v1/rooms",
        {"kind": "call", "participants": ["street1"], "monitors": [], "record": False},
        headers=headers,
    )
    resp = await client.post(
        "/api/v1/rooms",
        json={"kind": "call", "participants": ["user:99999999999999999999", "a" * 70]},
        headers=headers,
    )
    await _assert_4xx(resp, "huge invitees")
    for raw in ("%00", "x" * 1000):
        resp = await client.get(f"/api/v1/rooms/{raw}")
        await _assert_4xx(resp, raw)
        resp = await client.delete(f"/api/v1/rooms/{raw}", headers=headers)
        await _assert_4xx(resp, raw)
