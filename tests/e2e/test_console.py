"""The duty console in real Chromium: a raised alarm travels city → street → back, live.

A duty officer sees a new alarm appear without reloading, acknowledges and dispatches it; the
street officer (a second browser context) sees it arrive, reports and resolves it with a
disposition; the duty officer sees the state change live. The officer of another street
never sees it, neither on the page nor through the API.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.procs import ServerProcess, start_server

TIMEOUT_MS = 30_000  # a guard against hangs on a loaded machine, not a performance bound

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("console") / "data")
    yield srv
    srv.stop()


def _open_console(browser: Any, server: ServerProcess, user: str, **ctx: Any) -> tuple[Any, Any]:
    context = browser.new_context(**ctx)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    password = server.credentials()["users"][user]["password"]
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url("**/console")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#live:not(.off)", state="attached")
    page.evaluate("window.__sameDocument = true")
    return context, page


def _raise_sos(server: ServerProcess, subject_id: str) -> None:
    key = server.credentials()["integration_key"]
    body = {
        "event_id": f"e2e-{uuid.uuid4().hex}",
        "subject_id": subject_id,
        "device_id": "bracelet-1",
        "kind": "sos",
        "at": datetime.now(UTC).isoformat(),
    }
    req = urllib.request.Request(
        f"{server.url}/api/v1/device-events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status in (200, 201, 202), resp.read()


def test_alarm_round_trip_city_street_city(browser: Any, server: ServerProcess) -> None:
    creds = server.credentials()["users"]
    duty_ctx, duty = _open_console(browser, server, "duty1")
    street_ctx, street = _open_console(
        browser, server, "street1", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    other_ctx, other = _open_console(browser, server, "street2")
    try:
        subjects = duty.request.get(
            f"{server.url}/api/v1/subjects?street={creds['street1']['jurisdiction']}&page_size=1"
        ).json()["items"]
        subject = subjects[0]
        _raise_sos(server, subject["id"])
        alarms = []
        for _ in range(300):
            alarms = duty.request.get(f"{server.url}/api/v1/alarms?subject={subject['id']}").json()[
                "items"
            ]
            if alarms:
                break
            duty.wait_for_timeout(100)
        assert alarms, "the engine raised no alarm"
        alarm_id = alarms[0]["id"]
        row = f".q-row[data-id='{alarm_id}']"

        # The duty officer sees it appear live, with its SLA countdown once armed.
        duty.wait_for_selector(row)
        duty.wait_for_function(
            f'document.querySelector("{row} .sla") && document.querySelector("{row} .sla").textContent !== \'\''
        )
        duty.click(row)
        duty.wait_for_selector("#act-acknowledge").click()
        duty.wait_for_selector("#d-state[data-state='acknowledged']")
        duty.click("#act-dispatch")
        duty.fill("#d-note", "请所里核查")
        duty.click("#d-submit")
        duty.wait_for_selector("#d-state[data-state='dispatched']")

        # The street officer (on a phone) sees it arrive and works it.
        street.wait_for_selector(f"{row} .state[data-state='dispatched']")
        street.click(row)
        street.wait_for_selector("#act-report").click()
        street.fill("#d-note", "已电话联系本人，系误触")
        street.click("#d-submit")
        street.wait_for_selector("#d-state[data-state='verifying']")
        street.click("#act-resolve")
        street.select_option("#d-disposition", "false_alarm")
        street.fill("#d-note", "误触手环，已告知正确使用")
        street.click("#d-submit")
        street.wait_for_selector("#d-state[data-state='resolved']")
        assert "误触手环" in street.inner_text("#d-timeline")

        # The duty officer sees the change without reloading.
        duty.wait_for_selector(f"{row} .state[data-state='resolved']")
        duty.wait_for_selector("#d-state[data-state='resolved']")
        assert duty.evaluate("window.__sameDocument") is True
        assert street.evaluate("window.__sameDocument") is True

        # Another street's officer never sees it: not on the page, not through the API.
        assert other.query_selector(row) is None
        assert other.request.get(f"{server.url}/api/v1/alarms/{alarm_id}").status == 404
        assert other.request.get(f"{server.url}/api/v1/alarms/{alarm_id}/workflow").status == 404
        queue = other.request.get(f"{server.url}/api/v1/alarms/queue").json()
        assert alarm_id not in [a["id"] for a in queue["items"]]
        resp = other.request.post(
            f"{server.url}/api/v1/alarms/{alarm_id}/actions",
            data=json.dumps({"action": "note", "version": 1, "note": "x"}),
            headers={
                "Content-Type": "application/json",
                "X-CSRF-Token": other.evaluate(
                    "fetch('/api/v1/me').then(r => r.json()).then(m => m.csrf_token)"
                ),
            },
        )
        assert resp.status == 404
    finally:
        for ctx in (duty_ctx, street_ctx, other_ctx):
            ctx.close()
