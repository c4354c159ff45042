"""Face verification in real Chromium: the subject's camera is the astronaut photo (a
``.y4m`` clip made from ``skimage.data.astronaut()`` for
``--use-file-for-fake-video-capture``); the officer enrols her photo, starts a spot-check,
the subject's page answers and publishes the clip, the officer takes a snapshot, and the
record — and the officer's page beside the snapshot — shows ``match`` with its distance;
then a head-turn challenge to the still clip shows the automatic verdict ``failed`` beside
the video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import face_images as fi
from tests.e2e.conftest import CHROMIUM_FLAGS, QUIET_ENV, WatchedBrowser, need_chromium
from tests.procs import ServerProcess, start_server

TIMEOUT_MS = 60_000  # a guard against hangs on a loaded machine, not a performance bound
pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def write_y4m(path: Path, frames: int = 30) -> Path:
    """The astronaut, 640x480 (black bars), as a YUV 4:2:0 clip Chromium loops."""
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, 80:560] = fi.scaled(480 / 512)
    f = rgb.astype(np.float32)
    y = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    u = (f[..., 2] - y) * 0.564 + 128
    v = (f[..., 0] - y) * 0.713 + 128

    def sub(c: Any) -> bytes:
        half = c.reshape(240, 2, 320, 2).mean(axis=(1, 3))
        return bytes(np.clip(half, 0, 255).astype(np.uint8))

    planes = bytes(np.clip(y, 0, 255).astype(np.uint8)) + sub(u) + sub(v)
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)
    return path


@pytest.fixture(scope="module")
def face_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchedBrowser]:
    path = need_chromium()
    clip = write_y4m(tmp_path_factory.mktemp("clip") / "astronaut.y4m")
    from playwright.sync_api import sync_playwright

    flags = [*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=flags, headless=True)
        yield WatchedBrowser(b)
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = dict(QUIET_ENV, CENTER_SPOTCHECK_GESTURES="请把头转向左边", CENTER_LIVENESS_WINDOW_S="3")
    srv = start_server(tmp_path_factory.mktemp("face") / "data", env=env)
    yield srv
    srv.stop()


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


def test_spot_check_snapshot_matches_and_a_still_clip_fails_liveness(
    face_browser: Any, server: ServerProcess
) -> None:
    subject_id = server.credentials()["users"]["subject1"]["subject_id"]
    officer_ctx, officer = _login(face_browser, server, "street1", "/console")
    phone_ctx, phone = _login(
        face_browser,
        server,
        "subject1",
        "/s",
        geolocation={"latitude": 22.5431, "longitude": 114.0579, "accuracy": 15},
        permissions=["geolocation"],
        **PHONE,
    )
    try:
        csrf = officer.request.get(f"{server.url}/api/v1/me").json()["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        resp = officer.request.post(
            f"{server.url}/api/v1/subjects/{subject_id}/faces",
            data=fi.jpeg(fi.astronaut()),
            headers={**headers, "Content-Type": "image/jpeg"},
        )
        assert resp.status == 201, resp.text()
        face_id = resp.json()["id"]
        resp = officer.request.post(
            f"{server.url}/api/v1/subjects/{subject_id}/faces/{face_id}/approve", headers=headers
        )
        assert resp.status == 200 and resp.json()["state"] == "approved"
        resp = officer.request.post(
            f"{server.url}/api/v1/spotchecks", data={"subject_id": subject_id}, headers=headers
        )
        assert resp.status == 201, resp.text()
        spotcheck_id = resp.json()["id"]
        officer.goto(f"{server.url}/spotcheck?id={spotcheck_id}")
        officer.wait_for_selector("#status[data-state='ringing']")
        phone.wait_for_selector("#ring:not([hidden])")
        phone.click("#answer")
        phone.wait_for_selector("#status[data-state='live']")
        officer.wait_for_selector("#status[data-state='live']")
        officer.wait_for_function("window.spotPage.remoteFrames > 30")

        officer.click("#snap")
        officer.wait_for_selector("#snapshots li .face[data-outcome]")
        shown = officer.query_selector("#snapshots li .face")
        assert shown.get_attribute("data-outcome") == "match", shown.text_content()
        assert "一致" in shown.text_content()
        record = officer.request.get(f"{server.url}/api/v1/spotchecks/{spotcheck_id}").json()
        face = record["snapshots"][0]["data"]["face"]
        assert face["outcome"] == "match" and 0 <= face["distance"] < 0.6
        assert float(shown.get_attribute("data-distance")) == face["distance"]

        # a head-turn challenge to a still clip: the automatic verdict beside the video
        officer.click("#chal-gesture")
        officer.wait_for_selector("#liveness[data-verdict='failed']")
        line = officer.text_content("#liveness") or ""
        assert "向左转头" in line and "未通过" in line and "由民警判断" in line, line
        record = officer.request.get(f"{server.url}/api/v1/spotchecks/{spotcheck_id}").json()
        assert "no motion" in record["liveness"]["liveness"]["evidence"]["reason"]
    finally:
        officer_ctx.close()
        phone_ctx.close()
