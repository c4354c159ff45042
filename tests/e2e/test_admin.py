"""The admin console in real Chromium: an administrator creates and disables an officer while
the officer's console is open, and creates and revokes an integration key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import api
from tests.procs import ServerProcess

pytestmark = pytest.mark.browser


def _login(page: Any, server: ServerProcess, user: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_function("location.pathname !== '/login'")


def _admin_on_plans(browser: Any, server: ServerProcess) -> tuple[Any, Any]:
    """A zh-CN admin session on the plans tab: (context, page)."""
    ctx = browser.new_context(locale="zh-CN")
    page = ctx.new_page()
    _login(page, server, "admin", server.credentials()["users"]["admin"]["password"])
    page.click('.a-tabs button[data-tab="plans"]')
    return ctx, page


def _secret(page: Any) -> str:
    page.locator("#secret").wait_for(state="visible")
    value = str(page.locator("#secret-value").inner_text()).strip()
    page.click("#secret-close")
    return value


def test_admin_disables_an_officer_whose_console_is_open(
    browser: Any, demo_server: ServerProcess, artifacts_dir: Path
) -> None:
    admin_ctx = browser.new_context(locale="zh-CN")
    admin = admin_ctx.new_page()
    admin.on("dialog", lambda d: d.accept())
    _login(admin, demo_server, "admin", demo_server.credentials()["users"]["admin"]["password"])
    assert admin.evaluate("location.pathname") == "/admin"
    admin.locator("#users tbody tr").first.wait_for()

    street = admin.evaluate(
        "JSON.parse(document.getElementById('admin-boot').textContent)"
        ".jurisdictions.find((j) => j.level === 'street').id"
    )
    admin.fill("#nu-username", "street_e2e")
    admin.fill("#nu-display", "测试司法所员")
    admin.select_option("#nu-role", "street")
    admin.select_option("#nu-jurisdiction", street)
    admin.click("#nu-submit")
    password = _secret(admin)
    row = admin.locator('#users tr[data-username="street_e2e"]')
    row.wait_for()
    assert "从未" in row.inner_text()

    officer_ctx = browser.new_context(locale="zh-CN")
    officer = officer_ctx.new_page()
    _login(officer, demo_server, "street_e2e", password)
    assert officer.evaluate("location.pathname") == "/console"
    officer.wait_for_function("!document.getElementById('live').classList.contains('off')")

    admin.reload()
    row = admin.locator('#users tr[data-username="street_e2e"]')
    row.wait_for()
    assert "从未" not in row.inner_text()  # the last login shows
    row.locator("button.disable").click()
    admin.locator('#users tr[data-username="street_e2e"] .status', has_text="已停用").wait_for()
    # the officer's open console is logged out at once (websocket closed with 4001)
    officer.wait_for_url("**/login**", timeout=5000)
    admin.screenshot(path=str(artifacts_dir / "admin-users.png"))
    officer_ctx.close()

    # the audit viewer finds it, with before/after, and the chain verifies from the page
    admin.click('.a-tabs button[data-tab="audit"]')
    admin.fill("#af-object", "user:street_e2e")
    admin.click("#af-search")
    admin.locator("#audit tbody tr", has_text="user.disable").wait_for()
    admin.click("#af-verify")
    admin.locator("#verify-result.ok").wait_for()
    assert "审计链完好" in admin.locator("#verify-result").inner_text()
    admin_ctx.close()


def test_admin_creates_and_revokes_an_integration_key(
    browser: Any, demo_server: ServerProcess
) -> None:
    ctx = browser.new_context(locale="en")
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    _login(page, demo_server, "admin", demo_server.credentials()["users"]["admin"]["password"])
    page.goto(f"{demo_server.url}/admin?lang=en")
    page.click('.a-tabs button[data-tab="keys"]')
    page.fill("#nk-name", "vendor-e2e")
    page.select_option("#nk-kind", "api_key")
    page.click("#nk-submit")
    secret = _secret(page)
    assert secret.startswith("ck_")
    row = page.locator('#keys tr[data-name="vendor-e2e"]')
    row.wait_for()

    subject_id = _a_subject(demo_server)
    item = {
        "subject_id": subject_id,
        "at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "source": "app",
    }
    status, body = api(
        demo_server, "POST", "/api/v1/checkins", {**item, "event_id": "e2e-1"}, token=secret
    )
    assert status == 201, body
    row.locator("button.revoke").click()
    page.locator('#keys tr[data-name="vendor-e2e"] .status', has_text="revoked").wait_for()
    status, body = api(
        demo_server, "POST", "/api/v1/checkins", {**item, "event_id": "e2e-2"}, token=secret
    )
    assert status == 401, body
    ctx.close()


def _a_subject(server: ServerProcess) -> str:
    import sqlite3

    with sqlite3.connect(server.data_dir / "center.db") as db:
        return str(db.execute("SELECT id FROM subjects ORDER BY id LIMIT 1").fetchone()[0])


def test_admin_changes_a_plan_and_the_next_deadline_moves(
    browser: Any, demo_server: ServerProcess
) -> None:
    ctx, page = _admin_on_plans(browser, demo_server)
    row = page.locator('#plans tr[data-level="normal"]')
    row.wait_for()
    before = row.locator(".next").inner_text()
    weekly = row.locator("input.spec").input_value()
    # two normal subjects as their detail rows show them, before the change
    page.click('.a-tabs button[data-tab="subjects"]')
    page.select_option("#sf-level", "normal")
    page.click("#sf-search")
    page.wait_for_function(
        "document.querySelectorAll('#subjects tbody tr').length >= 2 && "
        "[...document.querySelectorAll('#subjects tbody tr select.level')]"
        ".every((s) => s.value === 'normal')"
    )
    first, second = (
        page.locator("#subjects tbody tr").nth(i).get_attribute("data-id") for i in (0, 1)
    )
    subj_before = page.locator(f'#subjects tr[data-id="{first}"] .next').inner_text()
    page.click('.a-tabs button[data-tab="plans"]')
    # QUIET_ENV's plan closes once a week (Monday 00:01); a daily one closes within a day
    row.locator("input.spec").fill("daily 00:00-23:40")
    row.locator("button.save").click()
    page.wait_for_function(
        "(b) => { const c = document.querySelector('#plans tr[data-level=normal] .next');"
        " return c && c.textContent !== b; }",
        arg=before,
    )
    after = page.locator('#plans tr[data-level="normal"] .next').inner_text()
    assert after < before, (before, after)  # same "YYYY-MM-DD HH:MM" format
    # the subject's own row shows its next window moved too, without a restart
    page.click('.a-tabs button[data-tab="subjects"]')
    page.click("#sf-search")
    page.wait_for_function(
        '([id, b]) => { const c = document.querySelector(`#subjects tr[data-id="${id}"] .next`);'
        " return c && c.textContent && c.textContent !== b; }",
        arg=[first, subj_before],
    )
    subj_after = page.locator(f'#subjects tr[data-id="{first}"] .next').inner_text()
    assert subj_after < subj_before, (subj_before, subj_after)
    # the second subject gets its own (the old weekly) plan: only its window moves back
    other = page.locator(f'#subjects tr[data-id="{second}"]')
    other_daily = other.locator(".next").inner_text()
    other.locator("input.plan").fill(weekly)
    other.locator("button.plan-save").click()
    page.wait_for_function(
        '([id, b]) => { const c = document.querySelector(`#subjects tr[data-id="${id}"] .next`);'
        " return c && c.textContent !== b; }",
        arg=[second, other_daily],
    )
    assert page.locator(f'#subjects tr[data-id="{second}"] .next').inner_text() > other_daily
    assert page.locator(f'#subjects tr[data-id="{second}"] .own').count() == 1
    assert page.locator(f'#subjects tr[data-id="{first}"] .next').inner_text() == subj_after
    page.reload()
    page.click('.a-tabs button[data-tab="plans"]')
    spec = page.locator('#plans tr[data-level="normal"] input.spec')
    spec.wait_for()
    assert spec.input_value() == "daily 00:00-23:40"
    ctx.close()


def test_an_unsaved_edit_survives_a_reload_of_its_table(
    browser: Any, demo_server: ServerProcess
) -> None:
    """Tab clicks and saves reload a table; typing done meanwhile is not thrown away."""
    ctx, page = _admin_on_plans(browser, demo_server)
    spec = page.locator('#plans tr[data-level="strict"] input.spec')
    spec.wait_for()
    saved = spec.input_value()
    spec.fill("daily 08:00-09:00")
    row = "document.querySelector('#plans tr[data-level=strict]')"
    page.evaluate(f"{row}.dataset.old = '1'")
    page.click('.a-tabs button[data-tab="plans"]')  # reloads and repaints the table
    page.wait_for_function(f"{row} && !{row}.dataset.old")
    assert spec.input_value() == "daily 08:00-09:00"
    # nothing was saved: a fresh page shows the server's value
    page.reload()
    page.click('.a-tabs button[data-tab="plans"]')
    spec.wait_for()
    assert spec.input_value() == saved
    ctx.close()


def test_admin_pairs_and_unpairs_a_wall(browser: Any, demo_server: ServerProcess) -> None:
    ctx = browser.new_context(locale="en")
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    _login(page, demo_server, "admin", demo_server.credentials()["users"]["admin"]["password"])
    page.goto(f"{demo_server.url}/admin?lang=en")
    page.click('.a-tabs button[data-tab="walls"]')
    page.fill("#nw-name", "hall-e2e")
    page.click("#nw-submit")
    code = _secret(page)
    assert code.isdigit() and len(code) == 6
    page.locator("#wall-codes tbody tr", has_text="hall-e2e").wait_for()

    wall_ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    wall = wall_ctx.new_page()
    wall.goto(f"{demo_server.url}/wall?code={code}")
    wall.wait_for_function("document.getElementById('conn').dataset.state === 'open'")

    page.click('.a-tabs button[data-tab="walls"]')  # reload the tab
    row = page.locator('#walls tr[data-name="hall-e2e"]')
    row.locator(".status", has_text="Online").wait_for()
    assert page.locator("#wall-codes tbody tr", has_text="hall-e2e").count() == 0
    row.locator("button.unpair").click()
    page.locator('#walls tr[data-name="hall-e2e"] .status', has_text="revoked").wait_for()
    wall.wait_for_function(
        "document.getElementById('conn').dataset.state !== 'open'", timeout=5_000
    )
    wall_ctx.close()
    ctx.close()


def test_admin_edits_a_subject_and_imports_a_csv(browser: Any, demo_server: ServerProcess) -> None:
    import sqlite3

    with sqlite3.connect(demo_server.data_dir / "center.db") as db:
        sid, level, street = db.execute(
            "SELECT id, level, street_id FROM subjects WHERE level != 'strict' ORDER BY id DESC"
        ).fetchone()
    ctx = browser.new_context(locale="en")
    page = ctx.new_page()
    _login(page, demo_server, "admin", demo_server.credentials()["users"]["admin"]["password"])
    page.goto(f"{demo_server.url}/admin?lang=en")
    page.click('.a-tabs button[data-tab="subjects"]')
    page.locator("#subjects tbody tr").first.wait_for()
    assert "page 1 of" in page.inner_text("#subj-total")
    page.fill("#sf-q", sid)
    page.click("#sf-search")
    row = page.locator(f'#subjects tr[data-id="{sid}"]')
    row.wait_for()
    assert page.locator("#subjects tbody tr").count() == 1
    assert row.locator("select.level").input_value() == level
    row.locator("select.level").select_option("strict")
    row.locator("button.save").click()
    page.locator("#toast", has_text="takes effect at once").wait_for()
    with sqlite3.connect(demo_server.data_dir / "center.db") as db:
        assert db.execute("SELECT level FROM subjects WHERE id = ?", (sid,)).fetchone() == (
            "strict",
        )

    text = f"id,name,level,street_id\r\nE2E-1,测试甲,normal,{street}\r\nE2E-2,测试乙,severe,{street}\r\n"
    page.set_input_files(
        "#si-file", files=[{"name": "s.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.click("#si-submit")
    page.locator("#import-report tr[data-line='3'] .status", has_text="rejected").wait_for()
    assert "level" in page.inner_text("#import-report tr[data-line='3'] .error")
    assert "created" in page.inner_text("#import-report tr[data-line='2'] .status")
    assert page.inner_text("#si-summary").startswith("1 created")
    href = page.get_attribute("#sf-csv", "href") or ""
    assert href.startswith("/api/v1/admin/subjects.csv")
    ctx.close()


def test_admin_changes_the_ack_minutes_live(browser: Any, demo_server: ServerProcess) -> None:
    ctx = browser.new_context(locale="en")
    page = ctx.new_page()
    _login(page, demo_server, "admin", demo_server.credentials()["users"]["admin"]["password"])
    page.goto(f"{demo_server.url}/admin?lang=en")
    page.click('.a-tabs button[data-tab="plans"]')
    page.wait_for_function("document.getElementById('ac-loop').value !== ''")
    page.fill("#ac-ack", "critical=2,default=20")
    page.click("#ac-save")
    page.locator("#toast", has_text="from now on").wait_for()
    page.reload()
    page.click('.a-tabs button[data-tab="plans"]')
    page.wait_for_function("document.getElementById('ac-ack').value === 'critical=2,default=20'")
    page.fill("#ac-ack", "critical=soon")
    page.click("#ac-save")
    page.locator("#toast", has_text="ack_sla_minutes").wait_for()  # refused, named
    ctx.close()
