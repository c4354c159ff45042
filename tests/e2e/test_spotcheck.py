"""A spot-check in two real Chromium contexts with fake cameras: the officer starts it from
an alarm's detail panel in the console, the subject's page (/s, phone-sized) rings and
answers with its location, both decode video, the officer's challenge shows on the subject's
screen, the snapshot JPEG's hash is the record's, ``passed`` is recorded, and the alarm's
timeline shows the snapshot, the challenge and the recording. Once with the officer on a
laptop, once on a phone."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conftest import QUIET_ENV
from tests.procs import ServerProcess, start_server

TIMEOUT_MS = 60_000  # a guard against hangs on a loaded machine, not a performance bound
pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        **QUIET_ENV,
        "CENTER_SPOTCHECK_CAMPAIGN_SHARE": "0.02",
        "CENTER_SPOTCHECK_CAMPAIGN_SEED": "e2e",
    }
    srv = start_server(tmp_path_factory.mktemp("spotcheck") / "data", env=env)
    yield srv
    srv.stop()


def _raise_sos(server: ServerProcess, subject_id: str) -> None:
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
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {server.credentials()['integration_key']}",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status in (200, 201, 202), resp.read()


def _login(browser: Any, server: ServerProcess, user: str, lands: str, **ctx: Any) -> Any:
    context = browser.new_context(**ctx)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", server.credentials()["users"][user]["password"])
    page.click("#login-submit")
    page.wait_for_url(f"**{lands}")
    return context, page


def _open_detail(console: Any, row: str, alarm_id: int) -> None:
    """Open the alarm's detail panel. The queue re-renders its rows as the alarm's SLA
    countdown ticks, so the click goes to whichever row element is current."""
    console.wait_for_selector("body[data-ready='1']")
    console.wait_for_selector(row)
    console.wait_for_function(
        "(sel) => { const el = document.querySelector(sel); if (el) el.click(); "
        "return (document.getElementById('d-title').textContent || '').startsWith('#' + "
        f"{alarm_id} + ' '); }}",
        arg=row,
        polling=500,
    )


@pytest.mark.parametrize(
    ("officer_device", "subject_login"), [("laptop", "subject1"), ("phone", "subject2")]
)
def test_spot_check_from_an_alarm(
    browser: Any, server: ServerProcess, officer_device: str, subject_login: str
) -> None:
    subject_id = server.credentials()["users"][subject_login]["subject_id"]
    _raise_sos(server, subject_id)
    officer_ctx, console = _login(
        browser, server, "street1", "/console", **(PHONE if officer_device == "phone" else {})
    )
    phone_ctx, phone = _login(
        browser,
        server,
        subject_login,
        "/s",
        geolocation={"latitude": 22.5431, "longitude": 114.0579, "accuracy": 15},
        permissions=["geolocation"],
        **PHONE,
    )
    try:
        alarms: list[dict[str, Any]] = []
        for _ in range(300):
            alarms = console.request.get(f"{server.url}/api/v1/alarms?subject={subject_id}").json()[
                "items"
            ]
            if alarms:
                break
            console.wait_for_timeout(100)
        assert alarms, "the engine raised no alarm"
        alarm_id = alarms[0]["id"]
        row = f".q-row[data-id='{alarm_id}']"
        _open_detail(console, row, alarm_id)
        with officer_ctx.expect_page() as opened:
            console.click("#d-spotcheck-btn")
        officer = opened.value
        officer.wait_for_selector("#status[data-state='ringing']")

        # the subject's phone rings; answering shares the location once and joins the call
        phone.wait_for_selector("#ring:not([hidden])")
        assert "福田司法所一" in phone.text_content("#caller")
        phone.click("#answer")
        phone.wait_for_selector("#status[data-state='live']")
        officer.wait_for_selector("#status[data-state='live']")
        phone.wait_for_function("window.subjectPage.remoteFrames > 10")
        officer.wait_for_function("window.spotPage.remoteFrames > 10")
        officer.wait_for_selector("#where dd")
        officer.wait_for_selector("#map:not([hidden]) canvas")  # home and answer on the city map
        assert officer.evaluate("window.spotPage.spotcheck.answer_location.lat") == 22.5431

        # a challenge shows on the subject's screen
        officer.click("#chal-digits")
        phone.wait_for_selector("#challenge:not([hidden])")
        digits = officer.evaluate("window.spotPage.spotcheck.challenge.digits")
        assert " ".join(digits) in phone.text_content("#challenge-text")

        # a snapshot: a JPEG whose SHA-256 is the one on the record
        officer.click("#snap")
        officer.wait_for_selector("#snapshots li")
        li = officer.query_selector("#snapshots li")
        sha = li.get_attribute("data-sha256")
        url = li.query_selector("img").get_attribute("src")
        jpeg = officer.request.get(f"{server.url}{url}").body()
        assert jpeg[:3] == b"\xff\xd8\xff" and hashlib.sha256(jpeg).hexdigest() == sha
        officer.wait_for_function("document.querySelector('#snapshots img').naturalWidth > 0")

        officer.check("input[name=result][value=passed]")
        officer.click("#submit-result")
        officer.wait_for_selector("#status[data-state='passed']")
        phone.wait_for_selector("#status[data-state='ended']")

        # the alarm's timeline in the console: snapshot (evidence), challenge, recording
        console.goto(f"{server.url}/console")
        _open_detail(console, row, alarm_id)
        for kind in ("evidence", "spotcheck_challenge", "spotcheck_recording"):
            console.wait_for_selector(f"#d-timeline li[data-type='{kind}']", state="attached")
        panel = console.request.get(f"{server.url}/api/v1/alarms/{alarm_id}/workflow").json()
        assert [e["sha256"] for e in panel["evidence"]] == [sha]
    finally:
        officer_ctx.close()
        phone_ctx.close()


def test_todays_campaign_list_and_the_printed_evidence(browser: Any, server: ServerProcess) -> None:
    context, page = _login(browser, server, "duty1", "/console")
    try:
        page.goto(f"{server.url}/spotcheck")
        page.wait_for_selector("#due:not([hidden]) #due-list li")
        day = page.request.get(f"{server.url}/api/v1/spotchecks/campaign").json()
        assert day["due"] == len(page.query_selector_all("#due-list li")) > 0
        first = page.query_selector("#due-list li button[data-subject]")
        subject = first.get_attribute("data-subject")
        first.click()
        page.wait_for_selector("#status[data-state='ringing']")
        assert page.evaluate("window.spotPage.spotcheck.subject_id") == subject
        page.emulate_media(media="print")
        assert not page.is_visible("#tools") and page.is_visible("#log")
        page.emulate_media(media="screen")
        page.click("#cancel")
        page.wait_for_selector("#status[data-state='cancelled']")
    finally:
        context.close()
