"""Login in real Chromium: each role lands on its page; wrong passwords and throttling show
clear messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import ServerProcess, start_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("login") / "data", env={"CENTER_LOGIN_MAX_FAILURES": "3"}
    )
    yield server
    server.stop()


def _login(page: Any, server: ServerProcess, user: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")


def test_demo_users_land_on_their_page(
    browser: Any, login_server: ServerProcess, artifacts_dir: Path
) -> None:
    creds = login_server.credentials()["users"]
    for user in ("admin", "duty1", "street1", "visit1"):
        ctx = browser.new_context(locale="zh-CN")
        page = ctx.new_page()
        _login(page, login_server, user, creds[user]["password"])
        page.wait_for_function("location.pathname !== '/login'")
        page.wait_for_load_state("networkidle")
        path = page.evaluate("location.pathname")
        assert "Not Found" not in page.content()
        role = creds[user]["role"]
        expected = {
            "admin": "/admin",
            "duty": "/console",
            "street": "/console",
            "visit_staff": "/visits",
        }[role]
        assert path == expected, (user, path)
        if user == "duty1":
            page.screenshot(path=str(artifacts_dir / "after-login-duty1.png"))
        ctx.close()


def test_wrong_password_message_then_throttled(browser: Any, login_server: ServerProcess) -> None:
    ctx = browser.new_context(locale="zh-CN")
    page = ctx.new_page()
    _login(page, login_server, "duty2", "wrong-password")
    err = page.locator("#login-error")
    err.wait_for(state="visible")
    assert "用户名或密码错误" in err.inner_text()
    assert page.evaluate("location.pathname") == "/login"
    for _ in range(3):
        page.fill("#password", "still-wrong")
        page.click("#login-submit")
        page.wait_for_timeout(200)
    page.wait_for_function("document.getElementById('login-error').textContent.includes('过多')")
    # the right password is refused during the lockout, with the same clear message
    page.fill("#password", login_server.credentials()["users"]["duty2"]["password"])
    page.click("#login-submit")
    page.wait_for_timeout(300)
    assert "过多" in err.inner_text()
    assert page.evaluate("location.pathname") == "/login"
    ctx.close()
