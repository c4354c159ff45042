"""Check-ins with photos on a real server and database: the result says ``pending``, the
subject's check-in list then shows the outcome and distance; a mismatch raises exactly one
``face_mismatch`` alarm, and excusing it adds the photo to the baseline (audited); a full
face queue answers 429 with Retry-After and records nothing, and no check-in is lost."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from alerts.models import Alarm, Checkin
from center.clock import FakeClock
from center.models import AuditEntry
from tests import face_images as fi
from tests.alerts.conftest import event_id, key_headers
from tests.alerts.workflow_support import browser
from tests.conftest import AppFactory, login
from tests.faces.test_baseline import enrol, subject_of
from web import keys


def b64(img: fi.Image) -> str:
    return base64.b64encode(fi.jpeg(img)).decode()


async def enrolled(client: TestClient) -> tuple[str, str]:
    """subject1 with the astronaut photo approved; returns (subject id, street1's CSRF)."""
    csrf = await login(client, "street1")
    sid = subject_of(client)
    face = await (await enrol(client, csrf, sid, fi.jpeg(fi.astronaut()))).json()
    resp = await client.post(
        f"/api/v1/subjects/{sid}/faces/{face['id']}/approve", headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 200
    return sid, csrf


def item(
    sid: str, clock: FakeClock, img: fi.Image | None, eid: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": eid or event_id("face"),
        "subject_id": sid,
        "at": (clock.now() - timedelta(minutes=1)).isoformat(),
        "source": "app",
    }
    if img is not None:
        body["photo_jpeg_b64"] = b64(img)
    return body


async def post(client: TestClient, *items: dict[str, Any]) -> Any:
    return await client.post(
        "/api/v1/checkins", json={"items": list(items)}, headers=key_headers(client)
    )


async def checkins(client: TestClient, sid: str) -> list[dict[str, Any]]:
    await client.app[keys.FACE_VERIFIER].idle()
    resp = await client.get(f"/api/v1/subjects/{sid}/checkins")
    assert resp.status == 200, await resp.text()
    return (await resp.json())["checkins"]  # type: ignore[no-any-return]


async def test_photos_are_matched_after_the_answer(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    sid, _ = await enrolled(client)
    a, b, c = (
        item(sid, fake_clock, fi.crop()),
        item(sid, fake_clock, fi.fake_camera()),
        item(sid, fake_clock, None),
    )
    resp = await post(client, a, b, c)
    assert resp.status == 200, await resp.text()
    results = (await resp.json())["results"]
    assert [r["status"] for r in results] == ["accepted"] * 3
    assert results[0]["face"] == {"outcome": "pending"} and "face" not in results[2]
    faces = {x["event_id"]: x["face"] for x in await checkins(client, sid)}
    assert faces[a["event_id"]]["outcome"] == "match"
    assert 0 < faces[a["event_id"]]["distance"] < 0.2
    assert faces[b["event_id"]] == {"outcome": "no_face", "distance": None}
    assert faces[c["event_id"]] is None
    since = (fake_clock.now() + timedelta(minutes=5)).isoformat()
    resp = await client.get(f"/api/v1/subjects/{sid}/checkins", params={"since": since})
    assert (await resp.json())["checkins"] == []


async def test_mismatch_raises_one_alarm_and_excusing_enrols_the_photo(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    # the mirror image lies at about 0.18: with the threshold at 0.1 it is a mismatch
    client = await make_client(demo=True, database_url=database_url, face_match_threshold=0.1)
    sid, csrf = await enrolled(client)
    one = item(sid, fake_clock, fi.mirrored())
    assert (await post(client, one)).status == 200
    listed = await checkins(client, sid)
    assert listed[0]["face"]["outcome"] == "mismatch" and listed[0]["face"]["distance"] > 0.1
    assert (await post(client, one)).status == 200  # the same check-in again: a duplicate
    await client.app[keys.FACE_VERIFIER].idle()
    async with client.app[keys.SESSIONMAKER]() as session:
        alarms = list(await session.scalars(select(Alarm).where(Alarm.kind == "face_mismatch")))
    assert len(alarms) == 1 and alarms[0].subject_id == sid
    assert listed[0]["face_alarm_id"] == alarms[0].id
    alarm_id = alarms[0].id

    version = alarms[0].version

    async def act(session: Any, token: str, **body: Any) -> None:
        nonlocal version
        resp = await session.post(
            f"/api/v1/alarms/{alarm_id}/actions",
            json={"version": version, **body},
            headers={"X-CSRF-Token": token},
        )
        assert resp.status == 200, await resp.text()
        version = (await resp.json())["version"]

    await act(client, csrf, action="acknowledge")
    async with browser(client, "duty1") as (duty, duty_csrf):
        await act(duty, duty_csrf, action="dispatch")
    await act(client, csrf, action="report", note="本人，镜像自拍")
    await act(
        client,
        csrf,
        action="resolve",
        note="确认本人",
        disposition="excused",
        add_to_baseline=True,
    )
    faces = (await (await client.get(f"/api/v1/subjects/{sid}/faces")).json())["faces"]
    assert [(f["state"], f["source"]) for f in faces] == [
        ("approved", "upload"),
        ("approved", "excused"),
    ]
    assert faces[1]["approved_by"] == "user:street1"
    async with client.app[keys.SESSIONMAKER]() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("face.%"))
                .order_by(AuditEntry.id)
            )
        )
    assert actions[-2:] == ["face.enrolled", "face.approved"]
    # the photo is now in the baseline: the same picture matches
    assert (await post(client, item(sid, fake_clock, fi.mirrored()))).status == 200
    assert (await checkins(client, sid))[0]["face"]["outcome"] == "match"


async def test_full_queue_answers_429_and_loses_no_checkin(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, face_queue_max=2)
    sid, _ = await enrolled(client)
    batch = [item(sid, fake_clock, fi.crop()) for _ in range(3)]
    resp = await post(client, *batch)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    async with client.app[keys.SESSIONMAKER]() as session:
        assert await session.scalar(select(func.count()).select_from(Checkin)) == 0
    # check-ins without photos never wait for the face queue
    assert (await post(client, item(sid, fake_clock, None))).status == 200
    # the client sends again, in batches that fit: every check-in is there and decided
    for part in (batch[:2], batch[2:]):
        resp = await post(client, *part)
        assert resp.status == 200, await resp.text()
        await client.app[keys.FACE_VERIFIER].idle()
    listed = await checkins(client, sid)
    assert len(listed) == 4
    got = {x["event_id"]: x["face"] for x in listed}
    assert all(got[b["event_id"]]["outcome"] == "match" for b in batch)
    assert client.app[keys.FACE_VERIFIER].pool.queued == 0
