"""A Chromium page whose link dies rejoins the call by itself.

Two real Chromium pages (fake cameras, rtc-client.js) are in a call on an in-process
server, so the test can reach the server's side of one page's connection: the user-space
harness (tests/media/netem.py) cuts that peer connection's UDP both ways, as a dead 4G link
would. Chromium sees ``disconnected`` within seconds; the page gives the connection up,
takes its slot back with ``rtc.rejoin`` over the still-open websocket and decodes again.
The other page is told ``participant_reconnecting`` and then decodes the rejoined page's
video again. Both pages report their getStats() into the room's quality timeline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import demo_credentials
from tests.e2e.conftest import CHROMIUM_FLAGS, need_chromium
from tests.media.netem import ImpairedLink
from web.components import media_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_JOIN = """async (room) => {
  const camera = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
  window.events = [];
  const rtc = new RtcClient({onEvent: (type, data) => window.events.push([type, data])});
  window.rtc = rtc;
  await rtc.connect();
  await rtc.join(room);
  rtc.addStream(camera);
  await rtc.negotiate();
  return rtc.participant;
}"""

# framesDecoded of the inbound video whose m-line carries `who`, on the current connection.
_FRAMES_FROM = """async (who) => {
  const rtc = window.rtc;
  if (!rtc.pc) return -1;
  const mids = [...rtc.carried].filter(([mid, p]) => p === who).map(([mid]) => mid);
  const stream = rtc.streamFor(who);
  if (!stream || stream.getVideoTracks().length === 0) return -1;
  const report = await rtc.stats();
  let frames = -1;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video" && mids.includes(s.mid)) {
      frames = s.framesDecoded || 0;
    }
  });
  return frames;
}"""


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    path = need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        await browser.close()


async def _login(browser: Any, base: str, user: str, password: str) -> Any:
    ctx = await browser.new_context(locale="zh-CN")
    page = await ctx.new_page()
    await page.goto(f"{base}/login")
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_function("location.pathname !== '/login'")
    await page.goto(f"{base}/check")  # a page that loads rtc-client.js
    return page


async def _frames_over(page: Any, who: str, more_than: int, limit_s: float = 60) -> int:
    deadline = time.monotonic() + limit_s
    while True:
        frames: int = await page.evaluate(_FRAMES_FROM, who)
        if frames > more_than:
            return frames
        if time.monotonic() > deadline:
            raise AssertionError(f"no video from {who} (frames {frames})")
        await asyncio.sleep(0.25)


async def _events(page: Any) -> list[str]:
    return [e[0] for e in await page.evaluate("window.events")]


async def test_a_cut_page_rejoins_by_itself_and_decodes_again(
    make_client: Any, chromium: Any
) -> None:
    client = await make_client(demo=True)
    base = str(client.make_url("")).rstrip("/")
    users = demo_credentials(client)["users"]
    a = await _login(chromium, base, "futian", users["futian"]["password"])
    b = await _login(chromium, base, "street1", users["street1"]["password"])
    created = await a.evaluate(
        """async () => {
          const me = await (await fetch('/api/v1/me')).json();
          const resp = await fetch('/api/v1/rooms', {method: 'POST', headers: {
            'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
            body: JSON.stringify({kind: 'call', participants: ['street1']})});
          return await resp.json();
        }"""
    )
    room = created["id"]
    pid_a = await a.evaluate(_JOIN, room)
    pid_b = await b.evaluate(_JOIN, room)
    await _frames_over(a, pid_b, 10)
    before = await _frames_over(b, pid_a, 10)

    # The server's end of page A's connection loses its link, both ways, for good.
    manager = media_of(client.app).manager
    old = manager.room(room).participants[pid_a]
    link = ImpairedLink()
    link.attach(old.pc)
    link.cut(3600)
    cut_at = time.monotonic()
    try:
        await a.wait_for_function("window.rtc.rejoins >= 1", timeout=30_000)
        took = time.monotonic() - cut_at
        # Chromium's own `failed` comes after 30 s; the page acted on `disconnected`.
        assert took < 15, took
        assert "reconnecting" in await _events(a)
        assert "bye" not in await _events(a)
        assert await a.evaluate("window.rtc.participant") == pid_a  # the same slot
        back = manager.room(room).participants[pid_a]
        assert back is not old
        # Both directions decode again on the new connection.
        await _frames_over(a, pid_b, 10)
        await b.wait_for_function(
            "window.events.some(([t]) => t === 'participant_reconnecting')", timeout=10_000
        )
        await _frames_over(b, pid_a, 10)
        assert await b.evaluate("window.rtc.rejoins") == 0  # B kept its own connection
        assert before > 10
        # The pages' getStats() samples are in the timeline next to the server's.
        deadline = time.monotonic() + 20
        while True:
            samples = [q for q in manager.room(room).quality if q.source == "browser"]
            decoded = {q.participant_id for q in samples if q.direction == "downlink" and q.fps}
            if {pid_a, pid_b} <= decoded:
                break
            assert time.monotonic() < deadline, samples
            await asyncio.sleep(0.5)
        assert any(q.rtt_ms is not None for q in samples), samples
    finally:
        link.close()
        await a.context.close()
        await b.context.close()
