"""The OpenAPI document is served, matches the routes, and survives a schemathesis run.

The fuzz run needs a server that a synchronous HTTP client can reach, so it runs the app in
a thread with its own event loop (real clock; nothing here depends on time) and drives
schemathesis from the test thread, a modest number of examples per operation.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from center.clock import RealClock
from tests.conftest import make_settings
from web import api_alarms, api_ingest, api_supervision, keys, openapi
from web.app import create_app

_OWN_HANDLERS = {
    f
    for module in (api_ingest, api_alarms, api_supervision, openapi)
    for f in vars(module).values()
    if callable(f) and hasattr(f, "__center_policy__")
}


async def test_document_is_served_and_matches_routes(demo_client: TestClient) -> None:
    resp = await demo_client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(doc)  # loads and resolves every reference
    routed: set[tuple[str, str]] = set()
    for route in demo_client.app.router.routes():
        if route.handler in _OWN_HANDLERS and route.method != "HEAD":
            routed.add((route.method.lower(), route.resource.canonical))  # type: ignore[union-attr]
    own = openapi.own_paths()
    documented = {
        (method, path) for path, ops in doc["paths"].items() if path in own for method in ops
    }
    assert documented == routed
    # every operation documents the error envelope it can return
    # the workflow's and the rooms' paths are merged in
    assert "/api/v1/alarms/{alarm_id}/actions" in doc["paths"]
    for path, ops in doc["paths"].items():
        if path not in own:
            continue
        for method, op in ops.items():
            assert "200" in op["responses"] or "201" in op["responses"], (method, path)
            if path != "/api/v1/openapi.json":
                assert "401" in op["responses"], (method, path)


class _LiveServer:
    """The app on a real port in a background thread (schemathesis's client is synchronous)."""

    def __init__(self, tmp_path: Path) -> None:
        self._settings = make_settings(tmp_path, demo=True, ingest_rate_per_s=100000)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app: web.Application | None = None

    def __enter__(self) -> _LiveServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(120)
        return self

    async def _start(self) -> None:
        self.app = create_app(self._settings, clock=RealClock())
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[_LiveServer]:
    with _LiveServer(tmp_path) as server:
        yield server


def _fuzzer(
    operation: Any,
    mode: Any,
    base: str,
    http: requests.Session,
    headers: dict[str, str],
    selected: list[Any],
    calls: list[str],
    failures: list[str],
) -> Any:
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        calls.append(case.method)
        try:
            case.call_and_validate(base_url=base, session=http, headers=headers, checks=selected)
        except AssertionError as exc:  # schemathesis raises a FailureGroup
            failures.append(f"{case.method} {case.formatted_path}: {exc}")
            raise

    return run


def test_schemathesis_finds_no_server_errors(live_server: _LiveServer) -> None:
    from schemathesis import checks
    from schemathesis.generation import GenerationMode

    assert live_server.app is not None
    base = f"http://127.0.0.1:{live_server.port}"
    demo: dict[str, Any] = live_server.app[keys.DEMO]
    http = requests.Session()
    resp = http.post(
        f"{base}/api/v1/auth/login",
        json={"username": "duty1", "password": demo["users"]["duty1"]["password"]},
    )
    assert resp.status_code == 200
    csrf = resp.json()["csrf_token"]
    key = demo["integration_key"]
    doc = http.get(f"{base}/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    selected = [checks.not_a_server_error]
    if os.environ.get("CENTER_TEST_FUZZ_ALL") != "1":
        selected += [
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ]
    failures: list[str] = []
    calls: list[str] = []
    own = openapi.own_paths() if os.environ.get("CENTER_TEST_FUZZ_ALL") != "1" else None
    for result in schema.get_all_operations():
        operation = result.ok()
        if own is not None and operation.path not in own:
            continue  # other packages fuzz their own paths (CENTER_TEST_FUZZ_ALL=1: all)
        ingest = operation.path in (
            "/api/v1/checkins",
            "/api/v1/device-events",
            "/api/v1/locations",
        )
        headers = {"Authorization": f"Bearer {key}"} if ingest else {"X-CSRF-Token": csrf}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _fuzzer(operation, mode, base, http, headers, selected, calls, failures)
            try:
                run()
            except Unsatisfiable:
                pass  # nothing negative to generate (an operation without inputs)
            except Exception as exc:
                if not failures or not re.search(str(operation.path), failures[-1]):
                    failures.append(f"{operation.label} ({mode}): {exc!r}"[:2000])
    assert not failures, "\n\n".join(failures)
    assert len(calls) > 100
