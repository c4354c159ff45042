"""A spot-check whose subject publishes the astronaut photo as live video (a real aiortc
peer): the officer's snapshot carries ``face`` ``match`` with its distance; a subject
showing the test pattern gets ``no_face``; a mismatch raises one ``face_mismatch`` alarm for
the spot-check, however many snapshots."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import numpy as np
from aiohttp.test_utils import TestClient
from aiortc import VideoStreamTrack
from sqlalchemy import select

from alerts.models import Alarm
from tests import face_images as fi
from tests.conftest import AppFactory, demo_credentials
from tests.faces.test_baseline import enrol
from tests.web.conftest import media, signal_for, user
from tests.web.ws.rtc_peer import WsPeer, wait_for
from web import keys


class PhotoTrack(VideoStreamTrack):
    """The astronaut, 640x480, as a live camera would send her."""

    def __init__(self) -> None:
        super().__init__()
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[:, 80:560] = fi.scaled(480 / 512)
        self._frame = frame

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self._frame, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def spotcheck_snapshots(
    client: TestClient, *, face: bool, shots: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    subject_id = demo_credentials(client)["users"]["subject1"]["subject_id"]
    officer = await user(client, "street1")
    resp = await enrol(client, officer.csrf, subject_id, fi.jpeg(fi.astronaut()))
    face_id = (await resp.json())["id"]
    await client.post(
        f"/api/v1/subjects/{subject_id}/faces/{face_id}/approve",
        headers={"X-CSRF-Token": officer.csrf},
    )
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
    if face:
        b.video = PhotoTrack()  # type: ignore[assignment]
    officer = await user(client, "street1")
    out = []
    try:
        await a.join()
        assert (await b.join())["success"]
        await asyncio.gather(a.connect(), b.connect())
        await wait_for(lambda: (v := a.video_from(b.participant)) is not None and v.frames > 30)
        for _ in range(shots):
            resp = await client.post(
                f"/api/v1/spotchecks/{sc['id']}/snapshot",
                json={},
                headers={"X-CSRF-Token": officer.csrf},
            )
            assert resp.status == 200, await resp.text()
            out.append((await resp.json())["snapshots"][-1]["data"])
    finally:
        for closing in (desk, phone, a, b):
            await closing.close()
    await media(client).settle()
    return sc, out


async def test_snapshot_of_the_astronaut_matches(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    _, shots = await spotcheck_snapshots(client, face=True)
    face = shots[0]["face"]
    assert face["outcome"] == "match", face
    assert 0 <= face["distance"] < 0.6


async def test_test_pattern_is_no_face(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    _, shots = await spotcheck_snapshots(client, face=False)
    assert shots[0]["face"] == {"outcome": "no_face", "distance": None}


async def test_one_mismatch_alarm_per_spotcheck(make_client: AppFactory) -> None:
    client = await make_client(demo=True, face_match_threshold=0.05)
    sc, shots = await spotcheck_snapshots(client, face=True, shots=2)
    assert [s["face"]["outcome"] for s in shots] == ["mismatch", "mismatch"]
    async with client.app[keys.SESSIONMAKER]() as session:
        alarms = list(await session.scalars(select(Alarm).where(Alarm.kind == "face_mismatch")))
    assert len(alarms) == 1 and alarms[0].dedup_key == f"face_mismatch:spotcheck:{sc['id']}"
