"""Shared fixtures: real apps from the factory, on real SQLite and PostgreSQL, a fake clock.

PostgreSQL and Redis come from ``CENTER_TEST_POSTGRES_URL`` / ``CENTER_TEST_REDIS_URL``
(defaults: the local services). Where they are unreachable the tests that need them skip
with the reason — except in CI (``CI=true``), where a missing service fails the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from config.settings import Settings, load_settings
from web.app import create_app

PG_URL = os.environ.get(
    "CENTER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CENTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = Path(
    os.environ.get("CENTER_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def need_service(name: str, url: str, port: int) -> None:
    """Skip (or, in CI, fail) when a service the test needs is down."""
    if _reachable(url, port):
        return
    msg = f"{name} is not reachable at {url} (set CENTER_TEST_{name.upper()}_URL)"
    if IN_CI:
        pytest.fail(f"{msg}; CI must provide it")
    pytest.skip(msg)


def need_postgres() -> None:
    need_service("postgres", PG_URL, 5432)


def need_redis() -> None:
    need_service("redis", REDIS_URL, 6379)


async def create_pg_database() -> str:
    """A fresh, empty PostgreSQL database for one test; returns its URL."""
    import asyncpg

    parsed = urlparse(PG_URL.replace("+asyncpg", ""))
    name = f"center_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{parsed.username or 'postgres'}@{parsed.hostname}:{parsed.port or 5432}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = urlparse(url).path.lstrip("/")
    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Runs the test once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'center.db'}"
        return
    need_postgres()
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'center.db'}"


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"data_dir": str(tmp_path / "data"), "port": 0, "simulator": False}
    base.update(overrides)
    return load_settings(env={}, overrides=base)


AppFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(aiohttp_client: Any, tmp_path: Path, fake_clock: FakeClock) -> AppFactory:
    """``await make_client(demo=True, database_url=...)`` → a TestClient on a real server."""

    async def factory(*, clock: Any = None, **overrides: Any) -> TestClient:
        settings = make_settings(tmp_path, **overrides)
        app: web.Application = create_app(settings, clock=clock or fake_clock)
        return await aiohttp_client(app)

    return factory


@pytest.fixture
async def demo_client(make_client: AppFactory) -> TestClient:
    """A demo-city app on SQLite with the fake clock (simulator off)."""
    return await make_client(demo=True)


def demo_credentials(client: TestClient) -> dict[str, Any]:
    from web import keys

    return client.app[keys.DEMO]


async def login(client: TestClient, username: str, password: str | None = None) -> str:
    """Log in (demo password by default); returns the CSRF token for state changes."""
    if password is None:
        password = demo_credentials(client)["users"][username]["password"]
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["csrf_token"])


def read_json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


_ = asyncio
