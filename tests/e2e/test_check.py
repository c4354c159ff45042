"""The device check page in real Chromium (fake camera and microphone): it joins an echo
room through the server and says in plain words that video and sound made the round trip,
with the measured round-trip time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.procs import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _login(page: Any, server: ServerProcess, user: str) -> None:
    password = server.credentials()["users"][user]["password"]
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_function("location.pathname !== '/login'")


def test_device_check_reports_success(
    browser: Any, demo_server: ServerProcess, artifacts_dir: Path
) -> None:
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    try:
        _login(page, demo_server, "street1")
        page.goto(f"{demo_server.url}/check")
        assert page.title().startswith("设备检测")
        page.click("#start")
        page.wait_for_function(
            "window.deviceCheck && ['passed', 'failed'].includes(window.deviceCheck.state)",
            timeout=90_000,
        )
        page.screenshot(path=str(artifacts_dir / "check-mobile.png"), full_page=True)
        result = page.evaluate("window.deviceCheck")
        assert result["state"] == "passed", result
        assert result["video"] and result["audio"]
        assert isinstance(result["rttMs"], int) and result["rttMs"] >= 0
        verdict = page.inner_text("#verdict")
        assert "检测通过" in verdict and "毫秒" in verdict
        assert page.get_attribute("#step-video", "data-state") == "ok"
        assert page.get_attribute("#step-audio", "data-state") == "ok"
        # The measuring method is there for those who ask, not in the main text.
        assert "currentRoundTripTime" in (page.text_content("#method") or "")
        assert "getStats" not in page.inner_text("main")
        # The returned picture stays visible after the check: its last frame.
        assert (page.get_attribute("#echo", "poster") or "").startswith("data:image/")
    finally:
        ctx.close()


def test_denied_camera_offers_retry_and_how_to(browser: Any, demo_server: ServerProcess) -> None:
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    ctx.add_init_script(
        "if (navigator.mediaDevices) navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('denied', 'NotAllowedError'));"
    )
    page = ctx.new_page()
    try:
        _login(page, demo_server, "street1")
        page.goto(f"{demo_server.url}/check")
        page.click("#start")
        page.wait_for_function("window.deviceCheck.state === 'failed'")
        assert page.is_enabled("#start") and page.inner_text("#start") == "重新检测"
        help_text = page.inner_text("#camera-help")
        assert "Chrome" in help_text and "Safari" in help_text and "微信" in help_text
    finally:
        ctx.close()


def test_check_page_needs_a_login(browser: Any, demo_server: ServerProcess) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{demo_server.url}/check")
        assert page.evaluate("location.pathname") == "/login"
    finally:
        ctx.close()
