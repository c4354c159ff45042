"""Two real Chromium pages with fake cameras join one call room through the server (over
rtc-client.js and the websocket), each decodes the other's video on the m-line the server
says carries it, the codec is VP8 as the server prefers, and after the room ends its
recordings decode with PyAV."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import pytest

from tests.procs import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_JOIN = """async (room) => {
  const camera = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
  const rtc = new RtcClient();
  window.rtc = rtc;
  await rtc.connect();
  await rtc.join(room);
  rtc.addStream(camera);
  await rtc.negotiate();
  return rtc.participant;
}"""

# framesDecoded and codec of the inbound video whose m-line carries `who` (tracks event).
_INBOUND_FROM = """async (who) => {
  const rtc = window.rtc;
  const mids = [...rtc.carried].filter(([mid, p]) => p === who).map(([mid]) => mid);
  const stream = rtc.streamFor(who);
  const report = await rtc.stats();
  const codecs = {};
  report.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
  let out = {frames: 0, codec: null, mapped: !!stream && stream.getVideoTracks().length > 0};
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video" && mids.includes(s.mid)) {
      out = {...out, frames: s.framesDecoded || 0, codec: codecs[s.codecId] || null};
    }
  });
  return out;
}"""


def _login(ctx: Any, server: ServerProcess, user: str) -> Any:
    page = ctx.new_page()
    password = server.credentials()["users"][user]["password"]
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_function("location.pathname !== '/login'")
    page.goto(f"{server.url}/check")  # a page that loads rtc-client.js
    return page


def _fetch(page: Any, method: str, path: str, body: Any = None) -> Any:
    return page.evaluate(
        """async ([method, path, body]) => {
          const me = await (await fetch('/api/v1/me')).json();
          const resp = await fetch(path, {method, headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': me.csrf_token}, body: body === null ? undefined : JSON.stringify(body)});
          return {status: resp.status, body: await resp.json()};
        }""",
        [method, path, body],
    )


def _wait_frames(page: Any, who: str, more_than: int, limit_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        got: dict[str, Any] = page.evaluate(_INBOUND_FROM, who)
        if got["frames"] > more_than and got["mapped"]:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"no video from {who}: {got}")
        page.wait_for_timeout(250)


def test_two_browsers_call_through_the_server(
    browser: Any, demo_server: ServerProcess, artifacts_dir: Path
) -> None:
    ctx_a = browser.new_context(locale="zh-CN")
    ctx_b = browser.new_context(locale="zh-CN")
    try:
        a = _login(ctx_a, demo_server, "futian")
        b = _login(ctx_b, demo_server, "street1")
        created = _fetch(a, "POST", "/api/v1/rooms", {"kind": "call", "participants": ["street1"]})
        assert created["status"] == 201, created
        room = created["body"]["id"]
        pid_a = a.evaluate(_JOIN, room)
        pid_b = b.evaluate(_JOIN, room)
        first_a = _wait_frames(a, pid_b, 10)
        first_b = _wait_frames(b, pid_a, 10)
        assert first_a["codec"] == "video/VP8" and first_b["codec"] == "video/VP8"
        # still growing: each keeps decoding the other
        assert _wait_frames(a, pid_b, first_a["frames"] + 10)["frames"] > first_a["frames"]
        assert _wait_frames(b, pid_a, first_b["frames"] + 10)["frames"] > first_b["frames"]
        ended = _fetch(a, "DELETE", f"/api/v1/rooms/{room}")
        assert ended["status"] == 200, ended
        b.wait_for_function("window.rtc.pc.connectionState === 'closed'")
    finally:
        ctx_a.close()
        ctx_b.close()
    recordings = ended["body"]["recordings"]
    assert len(recordings) == 2
    files = sorted((demo_server.data_dir / "recordings" / room).iterdir())
    assert len(files) == 2
    for path in files:
        with av.open(str(path)) as container:
            kinds = {s.type for s in container.streams}
            frames = sum(1 for _ in container.decode(video=0))
        assert kinds == {"video", "audio"}, path
        assert frames > 10, path
