"""The relative's booking page on a real server in Chromium, on a phone: a wrong phone gets
a plain sentence; the right ID number and phone show the inmate and free times; the
request is sent and listed, then cancelled from the list (the slot is free again)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import api
from tests.procs import ServerProcess

TIMEOUT_MS = 90_000  # a guard against hangs on a loaded machine, not a performance bound
pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ID_NUMBER, MOBILE = "440304195503129024", "17009009024"  # 王秀英, the demo's inmate-1001


def test_book_and_cancel_from_the_page(browser: Any, demo_server: ServerProcess) -> None:
    context = browser.new_context(**PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{demo_server.url}/visits/book")
    assert page.locator("h1").inner_text() == "预约视频会见"
    page.fill("#id-number", ID_NUMBER)
    page.fill("#phone", "13800000000")
    page.click("#who-go")
    page.wait_for_selector("#who-problem:not([hidden])")
    assert "不一致" in page.inner_text("#who-problem")
    page.fill("#phone", MOBILE)
    page.click("#who-go")
    page.wait_for_selector("#step-book:not([hidden])")
    assert "王建国" in page.inner_text("#inmate")
    slot = page.input_value("#slot")
    assert slot
    page.click("#book-go")
    page.wait_for_selector("#book-done:not([hidden])")
    made = page.evaluate("window.bookPage.last")
    assert made["state"] == "requested" and made["starts_at"]
    item = page.locator(f'#mine li[data-visit="{made["id"]}"]')
    assert "等待监狱审核" in item.inner_text()
    item.locator("button").click()
    page.wait_for_function(
        f"""() => window.bookPage.booking.requests.some(
            (r) => r.id === {made["id"]} && r.outcome === "cancelled")"""
    )
    assert "已取消" in page.locator(f'#mine li[data-visit="{made["id"]}"]').inner_text()
    status, again = api(
        demo_server,
        "POST",
        "/api/v1/visits/requests",
        {"id_number": ID_NUMBER, "phone": MOBILE, "inmate_id": "inmate-1001", "starts_at": slot},
    )
    assert status == 201, again  # the slot (and the month) is free again
    context.close()
