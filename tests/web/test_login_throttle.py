"""Login throttling as an attacker meets it: a stranger cannot lock an officer out, a
guesser's delays grow, an address trying many usernames is stopped, and two instances on
one Redis count the same attempts. Addresses come from ``X-Forwarded-For`` through a
trusted proxy (the test client connects from 127.0.0.1)."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from center.clock import FakeClock
from center.models import AuditEntry
from tests.conftest import REDIS_URL, AppFactory, demo_credentials, need_redis
from web import keys

ATTACKER = "203.0.113.66"
OFFICER = "10.20.0.2"


async def _login(client: TestClient, username: str, password: str, address: str) -> int:
    resp = await client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )
    if resp.status == 429:
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "too_many_attempts"
    return resp.status


def _password(client: TestClient, username: str) -> str:
    return str(demo_credentials(client)["users"][username]["password"])


async def test_a_stranger_cannot_lock_an_officer_out(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, trusted_proxies="127.0.0.1")
    # five wrong passwords from elsewhere, one spelt in capitals
    for name in ("duty2", "duty2", "DUTY2", "duty2", "Duty2"):
        assert await _login(client, name, "wrong-password", ATTACKER) in (401, 429)
    assert await _login(client, "duty2", "wrong-password", ATTACKER) == 429
    # the right password from the attacker's address is refused too (the pair is locked) …
    assert await _login(client, "duty2", _password(client, "duty2"), ATTACKER) == 429
    # … but the officer at their own desk is never refused
    assert await _login(client, "duty2", _password(client, "duty2"), OFFICER) == 200
    # and a typo there is a plain 401, not a lockout inherited from the attacker
    assert await _login(client, "duty2", "typo-password", OFFICER) == 401
    # failed attempts stay audited, with the address they came from
    async with client.app[keys.SESSIONMAKER]() as session:
        actors = list(
            await session.scalars(
                select(AuditEntry.actor).where(AuditEntry.action == "auth.login_failed")
            )
        )
    assert actors.count(f"anonymous@{ATTACKER}") == 5 and f"anonymous@{OFFICER}" in actors


async def test_delays_grow_for_a_pair_that_keeps_failing(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(
        demo=True,
        trusted_proxies="127.0.0.1",
        login_max_failures=3,
        login_lockout_s=60,
        login_lockout_max_s=200,
    )
    waits = []
    for _ in range(4):
        for _ in range(3):
            status = await _login(client, "duty1", "wrong-password", ATTACKER)
        assert status == 429
        resp = await client.post(
            "/api/v1/auth/login",
            json={"username": "duty1", "password": "x"},
            headers={"X-Forwarded-For": ATTACKER},
        )
        waits.append(int(resp.headers["Retry-After"]))
        await fake_clock.advance(waits[-1] + 1)
    assert waits == [60, 120, 200, 200], waits
    # a success clears the pair's record
    assert await _login(client, "duty1", _password(client, "duty1"), ATTACKER) == 200
    assert await _login(client, "duty1", "wrong-password", ATTACKER) == 401


async def test_an_address_trying_many_usernames_is_stopped(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, trusted_proxies="127.0.0.1", login_address_max_failures=8)
    for i in range(8):
        await _login(client, f"guess{i}", "wrong-password", ATTACKER)
    assert await _login(client, "someone-else", "wrong-password", ATTACKER) == 429
    assert await _login(client, "duty1", _password(client, "duty1"), ATTACKER) == 429
    assert await _login(client, "duty1", _password(client, "duty1"), OFFICER) == 200
    await fake_clock.advance(301)
    assert await _login(client, "duty1", _password(client, "duty1"), ATTACKER) == 200


async def test_forwarded_for_is_only_believed_from_a_trusted_proxy(
    make_client: AppFactory,
) -> None:
    client = await make_client(demo=True, login_max_failures=2)  # no trusted proxies
    for i in range(2):
        await _login(client, "duty1", "wrong-password", f"198.51.100.{i}")
    # the header was ignored: both came from 127.0.0.1, so that pair is locked
    assert await _login(client, "duty1", "wrong-password", "198.51.100.9") == 429


async def test_two_instances_on_one_redis_share_the_counts(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    need_redis()
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    common = {
        "redis_url": REDIS_URL,
        "redis_key_prefix": prefix,
        "trusted_proxies": "127.0.0.1",
        "login_max_failures": 4,
    }
    a = await make_client(demo=True, **common)
    b = await make_client(demo=True, database_url=a.app[keys.SETTINGS].database_url, **common)
    for client in (a, b, a):
        assert await _login(client, "duty1", "wrong-password", ATTACKER) == 401
    assert await _login(b, "duty1", "wrong-password", ATTACKER) == 429
    assert await _login(a, "duty1", "wrong-password", ATTACKER) == 429
    assert await _login(b, "duty1", _password(b, "duty1"), OFFICER) == 200
