"""The console and the report as a duty officer on shift uses them (issue 17, the ▲ items).

- an action form belongs to one alarm and one action: after dispatching A and opening B no
  leftover 派发 button can act on B, the form names its alarm and closes on a new selection;
- a checkbox click held while the queue ticks (the SLA countdown redraws every second) is
  never lost: 10 clicks, 10 checked;
- with the browser on UTC and a center whose local date is not the UTC date, /reports opens on
  the center's today, has a date picker and a way back, and the console shows center times.

Screenshots go to the ``artifacts_dir`` fixture's folder (``test-artifacts/``) for CI to keep.
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import QUIET_ENV, wait_until
from tests.procs import ServerProcess, start_server

TIMEOUT_MS = 30_000  # a guard against hangs on a loaded machine, not a performance bound

pytestmark = pytest.mark.browser


def _center_tz() -> str:
    """A zone whose date differs from UTC's right now (UTC+14 late in the UTC day, UTC−11
    early), so that any code reading the browser's or the server's UTC date shows up."""
    return "Pacific/Kiritimati" if datetime.now(UTC).hour >= 10 else "Pacific/Pago_Pago"


TZ = _center_tz()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(
        tmp_path_factory.mktemp("console-ux") / "data", env={**QUIET_ENV, "CENTER_TIMEZONE": TZ}
    )
    yield srv
    srv.stop()


def _shot(folder: Path, page: Any, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def _login(browser: Any, server: ServerProcess, user: str, **ctx: Any) -> tuple[Any, Any]:
    ctx.setdefault("viewport", {"width": 1600, "height": 900})
    ctx.setdefault("locale", "zh-CN")
    ctx.setdefault("timezone_id", "UTC")
    context = browser.new_context(**ctx)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", server.credentials()["users"][user]["password"])
    page.click("#login-submit")
    page.wait_for_url("**/console")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#live:not(.off)", state="attached")
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


def _subjects(
    page: Any, server: ServerProcess, n: int, offset: int = 0, of: str = "street1"
) -> list[dict[str, Any]]:
    """``n`` subjects of the street of officer ``of`` (each test takes its own, since a second
    SOS of the same subject folds into the open alarm)."""
    street = server.credentials()["users"][of]["jurisdiction"]
    items = page.request.get(
        f"{server.url}/api/v1/subjects?street={street}&page_size={n + offset}"
    ).json()["items"]
    assert len(items) >= n + offset
    return list(items[offset : offset + n])


def _alarm_of(page: Any, server: ServerProcess, subject_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        items = page.request.get(f"{server.url}/api/v1/alarms?subject={subject_id}").json()["items"]
        return items[0] if items else None

    return dict(wait_until(found))


def _act(page: Any, server: ServerProcess, alarm_id: int, action: str, note: str = "") -> None:
    """An action through the API with the page's session (as another officer's console)."""
    csrf = page.evaluate("fetch('/api/v1/me').then(r => r.json()).then(m => m.csrf_token)")
    version = page.request.get(f"{server.url}/api/v1/alarms/{alarm_id}").json()["version"]
    body: dict[str, Any] = {"action": action, "version": version}
    if note:
        body["note"] = note
    resp = page.request.post(
        f"{server.url}/api/v1/alarms/{alarm_id}/actions",
        data=json.dumps(body),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    assert resp.status == 200, resp.text()


def _visible(page: Any, selector: str) -> bool:
    return bool(page.is_visible(selector))


def test_action_form_belongs_to_one_alarm(
    browser: Any, server: ServerProcess, artifacts_dir: Path
) -> None:
    ctx, duty = _login(browser, server, "duty1")
    try:
        a_subj, b_subj = _subjects(duty, server, 2)
        _raise_sos(server, a_subj["id"])
        _raise_sos(server, b_subj["id"])
        a, b = _alarm_of(duty, server, a_subj["id"]), _alarm_of(duty, server, b_subj["id"])
        row_a, row_b = f".q-row[data-id='{a['id']}']", f".q-row[data-id='{b['id']}']"

        # One detail pane: no placeholder beside it, no form until asked for.
        duty.click(row_a)
        duty.wait_for_selector("#act-acknowledge")
        assert not _visible(duty, "#empty")
        assert not _visible(duty, "#d-submit") and not _visible(duty, "#d-cancel")
        assert not _visible(duty, "#d-note")
        queue_box = duty.locator(".c-queue").bounding_box()
        detail_box = duty.locator("#detail").bounding_box()
        assert detail_box["x"] >= queue_box["x"] + queue_box["width"] - 1
        assert detail_box["x"] + detail_box["width"] >= 1600 - 2  # the detail fills the right
        assert queue_box["width"] >= 800
        # The column headers sit over their columns.
        for head, cell in (("c-sev", "sev"), ("c-kind", "kind"), ("c-state", "state")):
            hx = duty.locator(f".q-head .{head}").bounding_box()["x"]
            cx = duty.locator(f"{row_a} .{cell}").bounding_box()["x"]
            assert abs(hx - cx) <= 2, (head, hx, cx)

        duty.click("#act-acknowledge")
        duty.wait_for_selector("#d-state[data-state='acknowledged']")
        duty.click("#act-dispatch")
        assert f"#{a['id']}" in duty.inner_text("#d-form-title")
        assert f"#{a['id']}" in duty.inner_text("#d-submit")
        duty.fill("#d-note", "请所里核查")
        duty.click("#d-submit")
        duty.wait_for_selector("#d-state[data-state='dispatched']")
        assert not _visible(duty, "#d-submit"), "the dispatch form stays open after dispatching"

        # B: no leftover dispatch button; acknowledging B leaves nothing that could dispatch it.
        duty.click(row_b)
        duty.wait_for_selector(f"#d-title:has-text('#{b['id']}')")
        assert not _visible(duty, "#d-submit")
        duty.click("#act-acknowledge")
        duty.wait_for_selector("#d-state[data-state='acknowledged']")
        assert not _visible(duty, "#d-submit")

        # A form opened for B closes when A is selected, and does not come back for B.
        duty.click("#act-dispatch")
        assert f"#{b['id']}" in duty.inner_text("#d-form-title")
        duty.fill("#d-note", "不应发出")
        duty.click(row_a)
        duty.wait_for_selector(f"#d-title:has-text('#{a['id']}')")
        assert not _visible(duty, "#d-form")
        duty.click(row_b)
        duty.wait_for_selector(f"#d-title:has-text('#{b['id']}')")
        assert not _visible(duty, "#d-form")
        status = duty.request.get(f"{server.url}/api/v1/alarms/{b['id']}").json()["state"]
        assert status == "acknowledged"

        # A key whose action does not apply says why; Esc closes help, not the alarm.
        duty.click(row_a)
        duty.wait_for_selector(f"#d-title:has-text('#{a['id']}')")
        duty.locator("#queue").focus()
        duty.keyboard.press("a")
        duty.wait_for_selector("#toast:has-text('签收')")
        assert "当前不能" in duty.inner_text("#toast")
        duty.keyboard.press("?")
        assert duty.evaluate("document.getElementById('help').open") is True
        assert duty.inner_text("#help button") == "知道了"
        duty.keyboard.press("Escape")
        assert duty.evaluate("document.getElementById('help').open") is False
        assert _visible(duty, "#detail")
        _shot(artifacts_dir, duty, "console-1600-detail")
    finally:
        ctx.close()


def test_phone_resolve_without_disposition_says_so_in_chinese(
    browser: Any, server: ServerProcess, artifacts_dir: Path
) -> None:
    """On a phone: big targets, the close button always on screen, and a resolve without a
    disposition stopped before sending, in Chinese, with the required fields marked."""
    duty_ctx, duty = _login(browser, server, "duty1")
    ctx, street = _login(
        browser,
        server,
        "street1",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    try:
        (subj,) = _subjects(street, server, 1, offset=12)
        _raise_sos(server, subj["id"])
        alarm = _alarm_of(street, server, subj["id"])
        _act(duty, server, alarm["id"], "acknowledge")
        _act(duty, server, alarm["id"], "dispatch", "请核查")
        row = f".q-row[data-id='{alarm['id']}']"
        # Dispatched to me: marked in the queue (with its kind), the instruction on top.
        street.wait_for_selector(f"{row}.mine")
        assert street.is_visible(f"{row} .kind") and street.inner_text(f"{row} .kind") == "紧急求助"
        street.click(row)
        street.wait_for_selector("#d-instruction:not([hidden])")
        assert "请核查" in street.inner_text("#d-instruction")
        instruction_y = street.locator("#d-instruction").bounding_box()["y"]
        assert instruction_y < street.locator("#d-summary").bounding_box()["y"] + 200
        # The actions sit at the bottom of the screen, within the thumb's reach.
        dock = street.locator(".d-dock").bounding_box()
        assert dock["y"] + dock["height"] >= 844 - 2 and dock["y"] > 844 / 2
        street.click("#d-close")
        _act(street, server, alarm["id"], "report", "已联系本人")
        street.wait_for_selector(f"{row} .state[data-state='verifying']")
        street.click(row)
        street.wait_for_selector("#act-resolve")
        for sel in ("#d-actions button", ".q-row"):
            for el in street.locator(sel).all():
                if el.is_visible():
                    assert el.bounding_box()["height"] >= 44, sel
        street.click("#act-resolve")
        assert "*" in street.evaluate(
            "getComputedStyle(document.getElementById('t-disposition'), '::after').content"
        )
        street.fill("#d-note", "误触")
        street.click("#d-submit")
        street.wait_for_selector("#d-form-error")
        error = street.inner_text("#d-form-error")
        assert "请选择处置结果" in error and "resolve" not in error and "false_alarm" not in error
        assert "全部" not in street.inner_text("#d-disposition")
        assert (
            street.request.get(f"{server.url}/api/v1/alarms/{alarm['id']}").json()["state"]
            == "verifying"
        )
        # The close button stays on screen however far the detail is scrolled.
        street.evaluate("document.getElementById('detail').scrollTop = 10000")
        box = street.locator("#d-close").bounding_box()
        assert box["y"] >= 0 and box["height"] >= 44 and box["width"] >= 44
        _shot(artifacts_dir, street, "console-390-detail")
    finally:
        ctx.close()
        duty_ctx.close()


def test_ten_held_clicks_while_the_queue_ticks(browser: Any, server: ServerProcess) -> None:
    ctx, duty = _login(browser, server, "duty1")
    try:
        subjects = _subjects(duty, server, 10, offset=2)
        for s in subjects:
            _raise_sos(server, s["id"])
        ids = [_alarm_of(duty, server, s["id"])["id"] for s in subjects]
        for i in ids:
            duty.wait_for_function(
                f"(document.querySelector(\".q-row[data-id='{i}'] .sla\") || {{}}).textContent"
            )
        for i in ids:
            box = duty.locator(f".q-row[data-id='{i}'] .chk").bounding_box()
            assert box is not None, i
            duty.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            duty.mouse.down()
            # Hold the press until the queue has redrawn that very row (its countdown ticked).
            before = duty.inner_text(f".q-row[data-id='{i}'] .sla")
            duty.wait_for_function(
                f"document.querySelector(\".q-row[data-id='{i}'] .sla\").textContent !== {json.dumps(before)}"
            )
            duty.mouse.up()
        checked = duty.eval_on_selector_all(
            ".q-row .chk:checked", "els => els.map(e => Number(e.closest('.q-row').dataset.id))"
        )
        assert sorted(checked) == sorted(ids)
        assert "已选 10 条" in duty.inner_text("#checked-count")
    finally:
        ctx.close()


def test_report_and_times_follow_the_center_timezone(
    browser: Any, server: ServerProcess, artifacts_dir: Path
) -> None:
    tz = ZoneInfo(TZ)
    ctx, duty = _login(browser, server, "duty1")
    try:
        today = datetime.now(tz).date()
        assert today != datetime.now(UTC).date()  # see _center_tz

        # The report: opens on the center's today, with a date picker and a way back.
        duty.click("#reports-link")
        duty.wait_for_url("**/reports")
        assert today.isoformat() in duty.inner_text("#report-title")
        assert duty.input_value("#report-date") == today.isoformat()
        _shot(artifacts_dir, duty, "report-1600-today")
        yesterday = (today - timedelta(days=1)).isoformat()
        duty.fill("#report-date", yesterday)
        duty.click("#report-go")
        duty.wait_for_url(f"**/reports?date={yesterday}*")
        assert yesterday in duty.inner_text("#report-title")
        assert f"date={yesterday}" in duty.get_attribute("#csv-link", "href")
        assert duty.get_attribute("#csv-machine-link", "href").endswith(f"date={yesterday}")
        duty.click("#back-console")
        duty.wait_for_url("**/console")
        assert date.fromisoformat(duty.evaluate("centerToday()")) == today
        duty.wait_for_selector("body[data-ready='1']")

        # The console: the times of an alarm are the center's, not the browser's (UTC).
        (subj,) = _subjects(duty, server, 1, offset=13)
        _raise_sos(server, subj["id"])
        alarm = _alarm_of(duty, server, subj["id"])
        raised = datetime.fromisoformat(alarm["created_at"]).astimezone(tz)
        row = f".q-row[data-id='{alarm['id']}']"
        duty.wait_for_selector(row)
        assert duty.inner_text(f"{row} .raised") == raised.strftime("%H:%M")
        duty.click(row)
        duty.wait_for_selector("#d-timeline li[data-type='raised']")
        assert raised.strftime("%Y-%m-%d %H:%M") in duty.inner_text(
            "#d-timeline li[data-type='raised']"
        )

        duty.click("#reports-link")
        duty.wait_for_url("**/reports")
        assert int(duty.inner_text("#report-table tr.total td:nth-of-type(1)")) >= 1
    finally:
        ctx.close()


def test_logout_offers_sign_off_and_login_says_what_is_wrong(
    browser: Any, server: ServerProcess
) -> None:
    users = server.credentials()["users"]
    ctx = browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    try:
        # Login: an empty field is named; the attempt before a lockout warns.
        page.goto(f"{server.url}/login")
        page.click("#login-submit")
        assert "请输入用户名" in page.inner_text("#login-error")
        page.fill("#username", "duty2")
        page.click("#login-submit")
        assert "请输入密码" in page.inner_text("#login-error")
        for _ in range(4):  # the default allows 5 failures; the 4th leaves one
            page.fill("#password", "wrong")
            page.click("#login-submit")
            page.wait_for_selector("#login-error:not([hidden])")
        assert "再错 1 次" in page.inner_text("#login-error")
        page.fill("#password", users["duty2"]["password"])  # success clears the count
        page.click("#login-submit")
        page.wait_for_url("**/console")
        page.wait_for_selector("body[data-ready='1']")

        # Sign on, then log out: the console asks to sign off and wants the handover note.
        page.click("#sign-toggle")
        page.wait_for_function(
            "document.getElementById('sign-toggle').textContent.includes('签退')"
        )
        page.click("#logout")
        assert page.evaluate("document.getElementById('signoff').open") is True
        page.click("#signoff-ok")
        assert "请填写交接班说明" in page.inner_text("#signoff-error")
        page.fill("#signoff-note", "3号报警待区局回复")
        page.click("#signoff-ok")
        page.wait_for_url("**/login?signed_out=1")
        assert page.is_visible("#login-info") and "已退出" in page.inner_text("#login-info")
    finally:
        ctx.close()

    # The next officer signs on and reads the note until they close it.
    duty_ctx, duty = _login(browser, server, "duty1")
    try:
        staffing = duty.request.get(f"{server.url}/api/v1/duty/staffing").json()
        assert "duty2" not in staffing.get("officers", [])
        duty.click("#sign-toggle")
        duty.wait_for_selector("#toast-close:visible")
        assert "3号报警待区局回复" in duty.inner_text("#toast")
        duty.click("#toast-close")
        assert not duty.is_visible("#toast")
    finally:
        duty_ctx.close()


def _raw_codes() -> set[str]:
    """Every code of the enums a person could see: levels, kinds, states, sources, actors."""
    from alerts.models import AlarmKind, AlarmState, CheckinSource, Severity
    from alerts.transitions import Action, Disposition, Level
    from center.models import JurisdictionLevel, Role, SupervisionLevel

    enums = (AlarmKind, AlarmState, CheckinSource, Severity, Action, Disposition, Level)
    more = (JurisdictionLevel, Role, SupervisionLevel)
    return {str(m) for e in (*enums, *more) for m in e}


def _find_raw(text: str, lang: str, codes: set[str]) -> list[str]:
    found = sorted(set(re.findall(r"\b(?:system|user|api_key|device):[\w.-]+", text)))
    for code in codes:
        # In Chinese every visible code is raw; in English a plain word ("city", "note") is
        # language, so only codes that no sentence contains (snake_case, lowercase sos) count.
        shown = re.search(rf"(?<![\w/.-]){re.escape(code)}(?![\w/.-])", text)
        if shown and (lang == "zh-CN" or "_" in code or code == "sos"):
            found.append(code)
    return found


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_no_raw_codes_on_any_page(browser: Any, server: ServerProcess, lang: str) -> None:
    codes = _raw_codes()
    ctx, duty = _login(browser, server, "duty1", locale=lang)
    try:
        duty.goto(f"{server.url}/console?lang={lang}")
        duty.wait_for_selector("body[data-ready='1']")
        (subj,) = _subjects(duty, server, 1, offset=15 if lang == "en" else 14)
        _raise_sos(server, subj["id"])
        alarm = _alarm_of(duty, server, subj["id"])
        _act(duty, server, alarm["id"], "acknowledge")
        _act(duty, server, alarm["id"], "note", "已联系")
        row = f".q-row[data-id='{alarm['id']}']"
        duty.wait_for_selector(row)
        duty.click(row)
        duty.wait_for_selector("#d-timeline li[data-type='note']")
        duty.wait_for_function("document.getElementById('d-profile').textContent.length > 0")
        assert "值班员一" in duty.inner_text("#d-timeline")  # the officer, by name
        pages = {"console": duty.inner_text("body")}
        duty.goto(f"{server.url}/reports?lang={lang}")
        pages["reports"] = duty.inner_text("body")
        duty.goto(f"{server.url}/?stay=1&lang={lang}")
        pages["home"] = duty.inner_text("body")
        wall = ctx.new_page()
        wall.goto(f"{server.url}/wall?lang={lang}&token={server.credentials()['wall_token']}")
        wall.wait_for_function("document.getElementById('conn').dataset.state === 'open'")
        wall.wait_for_selector("#ticker li[data-alarm-id]")
        pages["wall"] = wall.inner_text("body")
        login = browser.new_page(locale=lang)
        login.goto(f"{server.url}/login?lang={lang}")
        pages["login"] = login.inner_text("body")
        login.close()
        raw = {name: _find_raw(text, lang, codes) for name, text in pages.items()}
        assert raw == {name: [] for name in pages}, raw
    finally:
        ctx.close()


def test_why_no_buttons_and_wall_pairing(browser: Any, server: ServerProcess) -> None:
    """A district officer on an alarm another level owns, and an administrator, read why they
    cannot act; a duty officer creates a wall pairing code from the console."""
    duty_ctx, duty = _login(browser, server, "duty1")
    district_ctx, district = _login(browser, server, "futian")
    try:
        (subj,) = _subjects(duty, server, 1, offset=16)
        _raise_sos(server, subj["id"])
        alarm = _alarm_of(duty, server, subj["id"])
        row = f".q-row[data-id='{alarm['id']}']"
        district.wait_for_selector(row)
        district.click(row)
        district.wait_for_selector("#d-why:not([hidden])")
        why = district.inner_text("#d-why")
        owner = {"city": "市中心", "district": "区局", "street": "司法所"}[alarm["owner_level"]]
        assert f"由{owner}负责" in why and "只能添加备注" in why
        # One format for every time limit: h:mm:ss.
        sla = duty.inner_text(f"{row} .sla")
        assert re.fullmatch(r"\d+:\d\d:\d\d|已超时", sla), sla

        duty.click("#pair-wall")
        duty.fill("#pair-name", "大厅北墙")
        duty.click("#pair-create")
        duty.wait_for_selector("#pair-code")
        code = duty.inner_text("#pair-code")
        assert re.fullmatch(r"\d{6}", code)
        assert f"/wall?code={code}" in duty.inner_text("#pair-result")
        wall = duty_ctx.new_page()
        wall.goto(f"{server.url}/wall?code={code}")
        wall.wait_for_function("document.getElementById('conn').dataset.state === 'open'")
        wall.close()
    finally:
        duty_ctx.close()
        district_ctx.close()
    admin_ctx = browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN")
    try:
        admin = admin_ctx.new_page()
        admin.goto(f"{server.url}/login?next=/console")
        admin.fill("#username", "admin")
        admin.fill("#password", server.credentials()["users"]["admin"]["password"])
        admin.click("#login-submit")
        admin.wait_for_url("**/console")
        admin.wait_for_selector(row)
        admin.click(row)
        admin.wait_for_selector("#d-why:not([hidden])")
        assert "只能查看" in admin.inner_text("#d-why")
    finally:
        admin_ctx.close()


def test_bulk_results_say_why_and_keep_the_failed_selected(
    browser: Any, server: ServerProcess
) -> None:
    ctx, duty = _login(browser, server, "duty1")
    try:
        fresh, acked, changed = _subjects(duty, server, 3, of="street2")
        ids = {}
        for name, subj in (("fresh", fresh), ("acked", acked), ("changed", changed)):
            _raise_sos(server, subj["id"])
            ids[name] = _alarm_of(duty, server, subj["id"])["id"]
        for i in ids.values():
            duty.wait_for_selector(f".q-row[data-id='{i}']")
        _act(duty, server, ids["acked"], "acknowledge")
        duty.wait_for_selector(
            f".q-row[data-id='{ids['acked']}'] .state[data-state='acknowledged']"
        )
        for i in ids.values():
            duty.click(f".q-row[data-id='{i}'] .chk")
        # Changed meanwhile: the request carries the version the page had before the change.
        old = duty.request.get(f"{server.url}/api/v1/alarms/{ids['changed']}").json()["version"]
        _act(duty, server, ids["changed"], "acknowledge")
        duty.route(
            "**/api/v1/alarms/actions",
            lambda route: route.continue_(
                post_data=json.dumps(
                    {
                        **json.loads(route.request.post_data or "{}"),
                        "items": [
                            {**item, "version": old} if item["id"] == ids["changed"] else item
                            for item in json.loads(route.request.post_data or "{}")["items"]
                        ],
                    }
                )
            ),
        )
        duty.click("#bulk-ack")
        duty.wait_for_selector("#bulk-result:not([hidden])")
        summary = duty.inner_text("#bulk-summary")
        assert "成功 1 条" in summary and "共 3 条" in summary
        failures = {
            int(li.get_attribute("data-id")): li.inner_text()
            for li in duty.locator("#bulk-failures li").all()
        }
        assert set(failures) == {ids["acked"], ids["changed"]}
        assert "状态不符" in failures[ids["acked"]]
        assert "已被他人更改" in failures[ids["changed"]]
        checked = duty.eval_on_selector_all(
            ".q-row .chk:checked", "els => els.map(e => Number(e.closest('.q-row').dataset.id))"
        )
        assert sorted(checked) == sorted([ids["acked"], ids["changed"]])
        # Select-all wording: visible rows only, and a separate way to take all that match.
        assert "可见" in duty.inner_text("#t-select-all")
        matching = re.fullmatch(r"选择全部符合筛选的 (\d+) 条", duty.inner_text("#select-matching"))
        assert matching, duty.inner_text("#select-matching")
        duty.click("#select-matching")
        assert duty.inner_text("#checked-count") == f"已选 {matching.group(1)} 条"
    finally:
        ctx.close()
