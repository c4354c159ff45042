"""The e2e harness itself: an uncaught script error on any page is seen (and would fail)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_uncaught_script_errors_are_collected(browser: Any, no_script_errors: list[str]) -> None:
    context = browser.new_context()
    try:
        for page in (context.new_page(), browser.new_page()):
            page.set_content("<script>throw new Error('boom')</script>")
            page.wait_for_timeout(100)
            page.close()
    finally:
        context.close()
    assert len(no_script_errors) == 2 and "boom" in no_script_errors[0]
    no_script_errors.clear()  # seen on purpose: not this test's failure
