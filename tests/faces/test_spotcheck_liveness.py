"""Automatic liveness of a spot-check challenge, from the subject's live video (a real
aiortc peer publishing frames made from the astronaut photo): a head turn to the asked side
passes, the other side fails; a still photo (one frame repeated) fails with no motion; the
test pattern without a face is undecided; digits have no automatic check. The verdict is on
the spot-check (``liveness``), its items, and the alarm's timeline / the audit log.

The frames' content depends only on the frame count after the challenge is issued, and the
window is cut by the frames' timestamps, so a loaded machine judges the same pictures."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import av
import numpy as np
from aiohttp.test_utils import TestClient
from aiortc import VideoStreamTrack
from sqlalchemy import select

from center.models import AuditEntry
from tests import face_images as fi
from tests.conftest import AppFactory, demo_credentials
from tests.web.conftest import media, signal_for, user
from tests.web.ws.rtc_peer import WsPeer, wait_for
from web import keys

FPS = 30
FAST = {"liveness_window_s": 4.0, "liveness_fps": 3.0}  # 12 frames to judge
STILL_FRAMES = 45  # 1.5 s facing the camera after the challenge, then the turn
TURN_FRAMES = 30  # 1 s to turn to 20 degrees, then held


@cache
def _picture(degrees: int) -> np.ndarray[Any, Any]:
    frame = np.zeros((480, 640, 3), np.uint8)
    img = fi.head_turned(degrees) if degrees else fi.astronaut()
    frame[:, 80:560] = fi._resize(img, 480, 480)
    return frame


class HeadTurnTrack(VideoStreamTrack):
    """The astronaut at 640x480; ``turn(direction)`` starts a head turn after a still part
    (+1: her left, towards the image's right; 0: she never moves, a still photo)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self._from: int | None = None
        self._direction = 0

    def turn(self, direction: int) -> None:
        self._from, self._direction = self.sent, direction

    def degrees(self, n: int) -> int:
        if self._from is None or not self._direction:
            return 0
        done = min(1.0, max(0.0, (n - self._from - STILL_FRAMES) / TURN_FRAMES))
        return self._direction * 5 * round(done * 4)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        n, self.sent = self.sent, self.sent + 1
        d = self.degrees(n)
        picture = _picture(d) if d >= 0 else np.ascontiguousarray(_picture(-d)[:, ::-1])
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def challenged(
    client: TestClient, *, kind: str, direction: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start, answer and join a spot-check, issue one challenge (``direction`` None: the
    test pattern), and wait for its automatic verdict; returns (spot-check, verdict)."""
    for d in (0, 5, 10, 15, 20):
        _picture(d)  # made before the call: the track must keep its frame rate
    subject_id = demo_credentials(client)["users"]["subject1"]["subject_id"]
    officer = await user(client, "street1")
    desk = await signal_for(client, officer)
    resp = await client.post(
        "/api/v1/spotchecks",
        json={"subject_id": subject_id},
        headers={"X-CSRF-Token": officer.csrf},
    )
    assert resp.status == 201, await resp.text()
    sc = await resp.json()
    phone_login = await user(client, "subject1")
    phone = await signal_for(client, phone_login)
    resp = await client.post(
        f"/api/v1/spotchecks/{sc['id']}/answer", json={}, headers={"X-CSRF-Token": phone_login.csrf}
    )
    assert resp.status == 200, await resp.text()
    a = WsPeer(desk, sc["room_id"], base=10_000)
    b = WsPeer(phone, sc["room_id"], base=20_000)
    track = HeadTurnTrack() if direction is not None else None
    if track is not None:
        b.video = track  # type: ignore[assignment]
    officer = await user(client, "street1")
    try:
        await a.join()
        assert (await b.join())["success"]
        await asyncio.gather(a.connect(), b.connect())
        await wait_for(lambda: (v := a.video_from(b.participant)) is not None and v.frames > 10)
        resp = await client.post(
            f"/api/v1/spotchecks/{sc['id']}/challenge",
            json={"kind": kind},
            headers={"X-CSRF-Token": officer.csrf},
        )
        assert resp.status == 200, await resp.text()
        if track is not None and direction is not None:
            track.turn(direction)
        verdict: dict[str, Any] = {}

        async def decided() -> bool:
            got = await (await client.get(f"/api/v1/spotchecks/{sc['id']}")).json()
            verdict.update(got.get("liveness") or {})
            return bool(verdict)

        for _ in range(240):
            if await decided():
                break
            await asyncio.sleep(0.25)
        sc = await (await client.get(f"/api/v1/spotchecks/{sc['id']}")).json()
    finally:
        for closing in (desk, phone, a, b):
            await closing.close()
    await media(client).settle()
    assert verdict, "no verdict within a minute"
    return sc, verdict


async def test_a_head_turn_to_the_asked_side_passes(make_client: AppFactory) -> None:
    client = await make_client(demo=True, **FAST, spotcheck_gestures="请把头转向左边")
    sc, got = await challenged(client, kind="gesture", direction=1)
    liveness = got["liveness"]
    assert liveness["challenge"] == "turn_left"
    assert liveness["verdict"] == "passed", liveness["evidence"]
    evidence = liveness["evidence"]
    assert 4 <= evidence["frames"] <= 12 and len(evidence["yaw"]) == evidence["frames"]
    assert len(evidence["files"]) == evidence["frames"]
    assert all(len(f["sha256"]) == 64 for f in evidence["files"])
    times = [f["at_s"] for f in evidence["files"]]
    assert times == sorted(times) and times[-1] < 4.0
    assert got["challenge_item"] == sc["challenges"][-1]["id"]
    assert [i["type"] for i in sc["items"]].count("liveness") == 1
    async with client.app[keys.SESSIONMAKER]() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "spotcheck.liveness")
            )
        )
    assert len(audit) == 1 and '"passed"' in audit[0].details


async def test_the_other_side_fails(make_client: AppFactory) -> None:
    client = await make_client(demo=True, **FAST, spotcheck_gestures="请把头转向右边")
    _, got = await challenged(client, kind="gesture", direction=1)
    assert got["liveness"]["challenge"] == "turn_right"
    assert got["liveness"]["verdict"] == "failed", got["liveness"]["evidence"]


async def test_a_still_photo_fails(make_client: AppFactory) -> None:
    client = await make_client(demo=True, **FAST, spotcheck_gestures="请把头转向左边")
    _, got = await challenged(client, kind="gesture", direction=0)
    assert got["liveness"]["verdict"] == "failed"
    assert "no motion" in got["liveness"]["evidence"]["reason"]


async def test_no_face_is_undecided(make_client: AppFactory) -> None:
    client = await make_client(demo=True, **FAST, spotcheck_gestures="请眨三次眼睛")
    _, got = await challenged(client, kind="gesture", direction=None)
    assert got["liveness"]["challenge"] == "blink"
    assert got["liveness"]["verdict"] == "undecided"
    assert got["liveness"]["evidence"]["yaw"] == [None] * got["liveness"]["evidence"]["frames"]


async def test_digits_have_no_automatic_check(make_client: AppFactory) -> None:
    client = await make_client(demo=True, **FAST, spotcheck_gestures="请举起三根手指")
    sc, got = await challenged(client, kind="digits", direction=None)
    assert got["liveness"]["challenge"] == "digits"
    assert got["liveness"]["verdict"] == "undecided"
    assert "officer" in got["liveness"]["evidence"]["reason"]
    assert got["challenge_item"] == sc["challenges"][-1]["id"]
