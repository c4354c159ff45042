"""The wall screen in real Chromium against a real server process: it shows an alarm raised
through the ingestion API without reloading, survives a server restart with the right
counts, never puts a full name or an ID number in its DOM, and pairs with a one-time code."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.demo_city import generate_subjects
from config.privacy import mask_name
from tests.e2e.conftest import ServerFactory, api, free_port
from tests.procs import ServerProcess

pytestmark = pytest.mark.browser

ID_NUMBER = re.compile(r"\d{17}[\dXx]")
SUBJECTS = generate_subjects()


def raise_sos(server: ServerProcess, subject_index: int) -> dict[str, Any]:
    """An SOS from a subject's bracelet through ``POST /api/v1/device-events``."""
    subject = SUBJECTS[subject_index]
    status, body = api(
        server,
        "POST",
        "/api/v1/device-events",
        {
            "event_id": f"e2e-{uuid.uuid4().hex}",
            "subject_id": subject.key,
            "device_id": f"bracelet-{subject.key}",
            "kind": "sos",
            "at": datetime.now(UTC).isoformat(),
        },
        token=server.credentials()["integration_key"],
    )
    assert status in (200, 201, 202), body
    return {"name": subject.name, "id_number": subject.id_number, "phone": subject.phone}


def kpi(page: Any, name: str) -> int:
    text = page.inner_text(f"#kpi-{name}").replace(",", "")
    return int(text) if text.isdigit() else -1


def wait_kpi(page: Any, name: str, value: int) -> None:
    page.wait_for_function(
        "([id, v]) => document.getElementById(id).textContent.replace(/,/g, '') === String(v)",
        arg=[f"kpi-{name}", value],
        timeout=30_000,
    )


def assert_no_personal_data(page: Any, people: list[dict[str, Any]]) -> None:
    html = page.content()
    text = page.inner_text("body")
    for person in people:
        for value in (person["name"], person["id_number"], person["phone"]):
            assert value not in html, value
        assert mask_name(person["name"]) in text
    assert not ID_NUMBER.search(html)


def test_wall_live_update_restart_and_privacy(
    browser: Any, server_factory: ServerFactory, tmp_path: Path, artifacts_dir: Path
) -> None:
    data_dir, port = tmp_path / "wall-data", free_port()
    server = server_factory(data_dir, port=port)
    token = server.credentials()["wall_token"]
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/wall?token={token}")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'open'")
    assert page.evaluate("location.search") == ""  # the token does not stay on screen
    wait_kpi(page, "subjects", 2000)
    wait_kpi(page, "open", 0)
    page.evaluate("window.__sameDocument = true")

    people = [raise_sos(server, 0)]
    wait_kpi(page, "open", 1)
    page.wait_for_selector("#ticker li[data-alarm-id]")
    assert page.evaluate("window.__sameDocument") is True  # updated without a reload
    people.append(raise_sos(server, 1))
    wait_kpi(page, "open", 2)
    assert_no_personal_data(page, people)
    page.wait_for_timeout(1500)  # let the map and charts finish drawing for the picture
    page.screenshot(path=str(artifacts_dir / "wall-1920x1080.png"))

    # A restart: the wall notices, reconnects by itself and shows the counts from the database.
    server.stop()
    page.wait_for_function("document.getElementById('conn').dataset.state !== 'open'")
    server = server_factory(data_dir, port=port)
    page.wait_for_function(
        "document.getElementById('conn').dataset.state === 'open'", timeout=60_000
    )
    wait_kpi(page, "open", 2)
    people.append(raise_sos(server, 2))
    wait_kpi(page, "open", 3)
    assert page.evaluate("window.__sameDocument") is True
    assert_no_personal_data(page, people)
    ticker_names = page.locator("#ticker .name").all_inner_texts()
    assert sorted(ticker_names) == sorted(mask_name(p["name"]) for p in people)
    assert "光明区" in (page.get_attribute("#map", "data-unshaped") or "")
    assert "大鹏新区" in (page.get_attribute("#map", "data-unshaped") or "")

    page.set_viewport_size({"width": 3840, "height": 2160})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts_dir / "wall-3840x2160.png"))
    assert errors == []
    page.close()


def test_wall_pairing_code(browser: Any, demo_server: ServerProcess) -> None:
    server = demo_server
    # Staff create a code (session + CSRF), the wall opens /wall?code=..., and the code is spent.
    creds = server.credentials()["users"]["duty1"]
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    staff = ctx.new_page()
    staff.goto(f"{server.url}/login")
    resp = staff.request.post(
        f"{server.url}/api/v1/auth/login",
        data={"username": "duty1", "password": creds["password"]},
    )
    csrf = resp.json()["csrf_token"]
    resp = staff.request.post(
        f"{server.url}/api/v1/wall/pairing-codes",
        data={"name": "大厅北墙"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 201, resp.text()
    code = resp.json()["code"]
    assert re.fullmatch(r"\d{6}", code)
    ctx.close()

    wall_ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
    wall = wall_ctx.new_page()
    wall.goto(f"{server.url}/wall?code={code}")
    wall.wait_for_function("document.getElementById('conn').dataset.state === 'open'")
    assert wall.evaluate("location.search") == ""
    stored = wall.evaluate("localStorage.getItem('center.wall.token')")
    assert stored and stored.startswith("dt_")
    # "open" is the socket; the figures paint when the snapshot that follows it arrives
    wall.wait_for_function("document.getElementById('kpi-subjects').textContent.trim() !== '–'")
    wall_kpi_ok = wall.inner_text("#kpi-subjects").replace(",", "")
    assert wall_kpi_ok == "2000"
    # the same code does not work twice; a reload uses the stored token
    status, body = api(server, "POST", "/api/v1/wall/pair", {"code": code})
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    wall.goto(f"{server.url}/wall")
    wall.wait_for_function("document.getElementById('conn').dataset.state === 'open'")
    wall_ctx.close()

    # a wrong token shows "not paired", not a login prompt
    bad = browser.new_page()
    bad.goto(f"{server.url}/wall?token=dt_wrong")
    assert "未配对" in bad.inner_text("#overlay")
    assert "/login" not in bad.url
    bad.close()
