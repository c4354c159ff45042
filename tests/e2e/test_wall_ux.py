"""The wall as it is read from across the room (issue 17, the ▲ items): the check-in figure
is completion of the windows due so far (not of the whole day), the bars are labelled and
carry no "expected" bar dwarfing the done one, and a stale wall shows one stale state."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.demo_city import generate_subjects
from tests.e2e.conftest import api
from tests.procs import ServerProcess

pytestmark = pytest.mark.browser

OK_GREEN = "rgb(46, 204, 113)"


def _open_wall(browser: Any, server: ServerProcess, width: int, height: int) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN")
    page.set_default_timeout(30_000)
    page.clock.install()
    page.goto(f"{server.url}/wall?token={server.credentials()['wall_token']}")
    page.wait_for_function("document.getElementById('conn').dataset.state === 'open'")
    page.wait_for_function("document.getElementById('kpi-checkins').textContent !== '–'")
    return page


def _raise_sos(server: ServerProcess, subject_key: str) -> None:
    status, body = api(
        server,
        "POST",
        "/api/v1/device-events",
        {
            "event_id": f"e2e-{uuid.uuid4().hex}",
            "subject_id": subject_key,
            "device_id": f"bracelet-{subject_key}",
            "kind": "sos",
            "at": datetime.now(UTC).isoformat(),
        },
        token=server.credentials()["integration_key"],
    )
    assert status in (200, 201, 202), body


@pytest.fixture(scope="module")
def busy_server(demo_server: ServerProcess) -> ServerProcess:
    """The demo server with more open alarms than the ticker can show."""
    for subject in generate_subjects()[100:130]:
        _raise_sos(demo_server, subject.key)
    return demo_server


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
def test_checkin_figure_and_one_stale_state(
    browser: Any, busy_server: ServerProcess, artifacts_dir: Path, width: int, height: int
) -> None:
    page = _open_wall(browser, busy_server, width, height)
    try:
        # Whole ticker rows only, and the rest counted; chart labels readable across a room.
        page.wait_for_function("document.getElementById('ticker').dataset.cut > 0")
        box = page.locator("#ticker").bounding_box()
        for li in page.locator("#ticker li").all():
            if li.is_visible():
                row = li.bounding_box()
                assert row["y"] + row["height"] <= box["y"] + box["height"] + 0.5
        assert "另有" in page.inner_text("#ticker .more")
        sizes = page.evaluate(
            "['trend', 'checkins'].flatMap(id => {"
            " const o = echarts.getInstanceByDom(document.getElementById(id)).getOption();"
            " return [o.xAxis[0].axisLabel.fontSize, o.yAxis[0].axisLabel.fontSize]; })"
        )
        assert min(sizes) >= 18 * height / 1080, sizes
        # One date format on every page: 2026-12-02 03:48:05.
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.inner_text("#clock"))
        label = page.inner_text(".kpi:has(#kpi-checkins) .kpi-label")
        assert label == "今日签到完成率"
        figure = page.inner_text("#kpi-checkins")
        assert "已到期" in figure and "已签" in figure
        assert "2,000" not in figure  # never done / the whole day's (or the register's) count
        assert "已在闭环时限内处置" in page.inner_text(".kpi:has(#kpi-closed-loop) .kpi-hint")
        series = page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('checkins'))"
            ".getOption().series.map(s => s.name)"
        )
        assert series == ["按时签到", "未签到"]
        assert "实时" in page.inner_text("#conn")
        page.screenshot(path=str(artifacts_dir / f"wall-ux-{width}x{height}.png"))

        # No word from the server for a minute: the dot turns, "live" goes, numbers dim.
        page.clock.fast_forward(60_000)
        page.wait_for_selector("#fresh.stale")
        assert "实时" not in page.inner_text("#conn-text")
        assert "未更新" in page.inner_text("#fresh")
        dot = page.evaluate(
            "getComputedStyle(document.querySelector('#conn .dot')).backgroundColor"
        )
        assert dot != OK_GREEN
        opacity = page.evaluate("getComputedStyle(document.getElementById('kpi-open')).opacity")
        assert float(opacity) < 1
        page.screenshot(path=str(artifacts_dir / f"wall-ux-stale-{width}x{height}.png"))
    finally:
        page.close()
