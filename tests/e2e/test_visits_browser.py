"""A family visit in three real Chromium contexts with fake cameras: the relative joins by
code on a phone (/join: code, camera preview, echo network check, waiting room), the prison terminal's kiosk
(/terminal?token=) joins the open room, visit staff open it on /visits/monitor and admit;
both sides decode each other's video, the monitor decodes both and is absent from the
parties' getStats(), a staff warning shows on both sides, and with a one-minute limit the
visit ends itself on both pages; each side's recording decodes and its SHA-256 is the one
on the record, and the quality timeline has both sides (a badge per side on the grid's
card, a median grade per side on the record)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.e2e.conftest import QUIET_ENV
from tests.procs import ServerProcess, start_server

TIMEOUT_MS = 90_000  # a guard against hangs on a loaded machine, not a performance bound
pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

INBOUND_VIDEO = """async () => {
  const stats = await window.visitCall.rtc.pc.getStats();
  const video = [];
  let audio = 0;
  stats.forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video") video.push(r.framesDecoded || 0);
    else if (r.kind === "audio") audio += 1;
  });
  return { video, audio, roles: [...window.visitCall.rtc.participants.values()] };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**QUIET_ENV, "CENTER_VISIT_MINUTES": "1"}
    srv = start_server(tmp_path_factory.mktemp("visits") / "data", env=env)
    yield srv
    srv.stop()


def _context(browser: Any, **options: Any) -> Any:
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def _frames_grow(page: Any, expr: str) -> None:
    """The figure (frames decoded) keeps growing: video is flowing now, not just once."""
    first = page.wait_for_function(
        f"(async () => {{ const v = await ({expr}); return v > 10 && v; }})()"
    )
    before = first.json_value()
    page.wait_for_function(
        f"(before) => (async () => (await ({expr})) > before + 5)()", arg=before, polling=500
    )


def _video_frames(path: Path) -> int:
    """Video frames decoded, packet by packet as a player does: a packet that does not
    decode (before the first keyframe the recording caught) is skipped, not fatal."""
    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames += len(stream.codec_context.decode(packet))
            except av.error.InvalidDataError:
                continue
    return frames


def test_a_visit_from_code_to_its_end(browser: Any, server: ServerProcess) -> None:
    creds = server.credentials()
    visit_id = creds["visit"]["id"]
    code = creds["visit"]["join_codes"][0]
    relative_ctx = _context(browser, **PHONE)
    terminal_ctx = _context(browser)
    staff_ctx = _context(browser)
    try:
        # the relative: code, camera preview, waiting room
        relative = relative_ctx.new_page()
        relative.goto(f"{server.url}/join")
        relative.fill("#code", code)
        relative.click("#code-go")
        relative.wait_for_selector("body[data-step='devices'] #devices-ok:not([hidden])")
        relative.wait_for_function("document.getElementById('preview').videoWidth > 0")
        # the echo-room network check: our own video and sound made the round trip
        relative.wait_for_selector("#net[data-state='ok']")
        assert relative.evaluate("window.joinPage.netFrames") >= 15
        relative.click("#devices-go")
        relative.wait_for_selector("#status[data-state='waiting']")
        assert relative.text_content("#slot")
        assert relative.text_content("#countdown")

        # the prison terminal sees the visit on its day's schedule and joins the open room
        terminal = terminal_ctx.new_page()
        terminal.goto(f"{server.url}/terminal?token={creds['terminal_token']}")
        terminal.wait_for_selector(
            f"#schedule-box #schedule li[data-id='{visit_id}']", state="attached"
        )
        terminal.wait_for_selector("#step-visit:not([hidden]) #status[data-state='waiting']")

        # visit staff open it in the monitor (silent) and admit
        staff = staff_ctx.new_page()
        staff.goto(f"{server.url}/login")
        staff.fill("#username", "visit1")
        staff.fill("#password", creds["users"]["visit1"]["password"])
        staff.click("#login-submit")
        staff.wait_for_url("**/visits")
        staff.goto(f"{server.url}/visits/monitor")
        staff.click(f".vs-card[data-id='{visit_id}']")
        staff.wait_for_function(
            "Object.values(window.monitorPage.frames).filter((n) => n > 10).length === 2"
        )
        # beside the live video, the relatives as on file (the demo has no photos: said so)
        staff.wait_for_selector("#photos figure.vs-photo")
        assert "无档案照片" in staff.text_content("#photos")
        staff.click("#admit")
        staff.wait_for_selector("#open-state[data-state='live']")
        relative.wait_for_selector("#status[data-state='live']")
        terminal.wait_for_selector("#status[data-state='live']")
        assert relative.text_content("#countdown").strip()

        # each side decodes the other's video, and its frames keep coming
        for page in (relative, terminal):
            page.wait_for_function("document.getElementById('remote').videoWidth > 0")
            _frames_grow(page, f"({INBOUND_VIDEO})().then((s) => s.video[0] || 0)")
        # the monitor decodes both sides ...
        staff.wait_for_function(
            "[...document.querySelectorAll('#sides video')].filter((v) => v.videoWidth > 0).length === 2"
        )
        # ... and is absent from the parties' getStats(): one inbound video, one audio, no monitor
        for page in (relative, terminal):
            seen = page.evaluate(INBOUND_VIDEO)
            assert len(seen["video"]) == 1 and seen["audio"] <= 1, seen
            assert "monitor" not in seen["roles"], seen

        # a staff warning text shows on both sides
        staff.fill("#warn-text", "请不要谈论案情")
        staff.click("#warn")
        for page in (relative, terminal):
            page.wait_for_selector(".vs-notice[data-kind='text']")
            assert "请不要谈论案情" in page.text_content(".vs-notice[data-kind='text']")

        # the monitor shows a quality badge per side, from the room's quality timeline ...
        staff.wait_for_function(
            "document.querySelectorAll('#sides .vs-badge[data-grade]').length === 2"
        )
        # ... and every card of the grid one per side (relatives, inmate)
        staff.wait_for_function(
            f"document.querySelectorAll(\".vs-card[data-id='{visit_id}'] .vs-badge[data-grade]\")"
            ".length === 2"
        )
        sides = {
            "relatives": relative.evaluate("window.visitCall.rtc.participant"),
            "inmate": terminal.evaluate("window.visitCall.rtc.participant"),
        }
        assert all(sides.values()) and len(set(sides.values())) == 2, sides

        # the one-minute limit: the visit ends itself on both pages
        for page in (relative, terminal):
            page.wait_for_selector("#status[data-state='ended']")
            page.wait_for_selector("#outcome:not([hidden])")
            assert page.is_hidden("#call")
        staff.wait_for_selector(f".vs-card[data-id='{visit_id}']", state="detached")

        record: dict[str, Any] = {}
        for _ in range(300):
            record = staff.request.get(f"{server.url}/api/v1/visits/{visit_id}").json()
            if any(i["type"] == "recording" for i in record["items"]):
                break
            staff.wait_for_timeout(200)
        assert (record["state"], record["outcome"]) == ("ended", "completed")
        recordings = [i["data"] for i in record["items"] if i["type"] == "recording"]
        assert len(recordings) == 2, record["items"]  # the relative's and the terminal's
        for rec in recordings:
            # the file decodes, and its SHA-256 is the one on the record (and audit chain)
            (path,) = (server.data_dir / "recordings" / record["room_id"]).glob(
                f"{rec['recording_id']}.*"
            )
            assert hashlib.sha256(path.read_bytes()).hexdigest() == rec["sha256"], rec
            assert _video_frames(path) >= 10, (path, rec)
        assert [i["type"] for i in record["items"]][:2] == ["waiting", "admitted"]

        # the quality timeline of each side: the room's samples, and a grade on the record
        timeline = staff.request.get(f"{server.url}/api/v1/rooms/{record['room_id']}/quality")
        samples = timeline.json()["samples"]
        for side, participant in sides.items():
            mine = [q for q in samples if q["participant"] == participant]
            assert {q["direction"] for q in mine} >= {"uplink", "downlink"}, (side, samples)
            assert record["quality"][side] in ("excellent", "good", "poor", "lost"), record
        assert any(i["type"] == "quality" for i in record["items"]), record["items"]
    finally:
        relative_ctx.close()
        terminal_ctx.close()
        staff_ctx.close()


def test_a_wrong_code_says_so_in_plain_words(browser: Any, server: ServerProcess) -> None:
    context = _context(browser, **PHONE)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/join?lang=en")
        page.fill("#code", "000000")
        page.click("#code-go")
        page.wait_for_selector("#code-problem:not([hidden])")
        assert "not right" in page.text_content("#code-problem")
        assert page.evaluate("window.joinPage.step") == "code"
    finally:
        context.close()


def test_the_staff_list_and_a_refused_booking(browser: Any, server: ServerProcess) -> None:
    creds = server.credentials()
    context = _context(browser)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/login")
        page.fill("#username", "visit1")
        page.fill("#password", creds["users"]["visit1"]["password"])
        page.click("#login-submit")
        page.wait_for_url("**/visits")
        page.wait_for_selector(f"#rows tr[data-id='{creds['visit']['id']}']")
        # a booking that breaks a rule says what to change (here: the slot is in the past)
        page.fill("#b-inmate", "inmate-1001")
        page.fill("#b-relatives", "1")
        page.fill("#b-starts", "2020-01-06T10:00")
        page.click("#book button[type=submit]")
        page.wait_for_function("document.getElementById('book-result').textContent.length > 0")
        assert "pick a later time" in page.text_content("#book-result")
    finally:
        context.close()
