"""Fixtures for real-browser tests: Chromium through Playwright, and real server processes.

- ``browser``: Chromium (``/usr/bin/chromium``, fake camera and microphone), one per module.
  Where Chromium is missing the test skips with the reason — except in CI (``CI=true``),
  where it fails: CI must install it. Every page it opens is watched: an uncaught script
  error (``pageerror``) fails the test that was running, so a page that breaks half-way
  cannot pass on what it rendered before the error.
- ``demo_server``: ``python run.py --demo --no-simulator`` on a free port with its own data
  directory, ready (``/readyz`` = 200) and with ``credentials()`` from
  ``<data-dir>/demo-credentials.json``; one per module.
- ``server_factory``: start (and restart) servers yourself, e.g. two instances on one Redis,
  or the same data directory and port again after a stop; all are stopped at teardown.

The alarm engine is kept quiet by default (``QUIET_ENV``: no catch-up of past windows, plans
whose windows do not close during a test run) so that counts change only when a test acts.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import ServerProcess, free_port, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-gpu",
]
IN_CI = os.environ.get("CI", "").lower() == "true"

QUIET_ENV = {
    "CENTER_ALARM_CATCHUP_H": "0",
    "CENTER_CHECKIN_PLAN_STRICT": "mon 00:00-00:01",
    "CENTER_CHECKIN_PLAN_NORMAL": "mon 00:00-00:01",
    "CENTER_CHECKIN_PLAN_LENIENT": "mon 00:00-00:01",
}


def need_chromium() -> str:
    """The Chromium path; skip (or in CI fail) when it is not installed."""
    if not shutil.which(CHROMIUM):
        msg = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{msg}; CI must install it")
        pytest.skip(msg)
    return CHROMIUM


SCRIPT_ERRORS: list[str] = []


def _watch(page: Any) -> None:
    page.on("pageerror", lambda exc: SCRIPT_ERRORS.append(f"{page.url}: {exc}"))


class WatchedBrowser:
    """The Playwright browser, with every page it opens reporting uncaught script errors."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def new_context(self, **options: Any) -> Any:
        context = self._browser.new_context(**options)
        context.on("page", _watch)
        return context

    def new_page(self, **options: Any) -> Any:
        page = self._browser.new_page(**options)
        _watch(page)
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[WatchedBrowser]:
    path = need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        yield WatchedBrowser(b)
        b.close()


@pytest.fixture(autouse=True)
def no_script_errors() -> Iterator[list[str]]:
    """Fails a browser test whose pages threw an uncaught script error (a test that throws
    on purpose takes this fixture and clears the list)."""
    SCRIPT_ERRORS.clear()
    yield SCRIPT_ERRORS
    errors, SCRIPT_ERRORS[:] = list(SCRIPT_ERRORS), []
    assert not errors, errors


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start(data_dir=None, port=None, env=None, args=...)`` → a ready server."""
    started: list[ServerProcess] = []

    def start(
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        quiet: bool = True,
        args: tuple[str, ...] = ("--demo", "--no-simulator"),
    ) -> ServerProcess:
        full_env = {**(QUIET_ENV if quiet else {}), **(env or {})}
        server = start_server(
            data_dir or tmp_path / f"data-{len(started)}", port=port, env=full_env, args=args
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("demo") / "data", env=QUIET_ENV)
    yield server
    server.stop()


def api(
    server: ServerProcess,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A JSON request to a server process: ``(status, parsed body)``, errors included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{server.url}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def wait_until(predicate: Callable[[], Any], timeout: float = 30, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it is truthy (for server-side state, not browser state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(every)


__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "QUIET_ENV",
    "ServerFactory",
    "WatchedBrowser",
    "api",
    "free_port",
    "need_chromium",
    "wait_until",
]
