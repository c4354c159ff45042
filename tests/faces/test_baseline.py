"""Baseline photos over HTTP on a real server and database: enrol, approve, list, delete,
at most five, audited, scoped (another street's officer gets 404), and unusable photos
refused with their outcome."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from center.models import AuditEntry
from tests import face_images as fi
from tests.conftest import AppFactory, demo_credentials, login
from web import keys


def subject_of(client: TestClient, username: str = "subject1") -> str:
    return str(demo_credentials(client)["users"][username]["subject_id"])


async def enrol(client: TestClient, csrf: str, subject_id: str, jpeg: bytes) -> Any:
    return await client.post(
        f"/api/v1/subjects/{subject_id}/faces",
        data=jpeg,
        headers={"X-CSRF-Token": csrf, "Content-Type": "image/jpeg"},
    )


async def audit_actions(client: TestClient) -> list[str]:
    async with client.app[keys.SESSIONMAKER]() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("face.%"))
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def test_enrol_approve_list_delete_audited(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "street1")
    sid = subject_of(client)
    photo = fi.jpeg(fi.astronaut())
    resp = await enrol(client, csrf, sid, photo)
    assert resp.status == 201, await resp.text()
    face = await resp.json()
    assert face["state"] == "pending" and len(face["sha256"]) == 64 and face["id"] >= 1
    again = await enrol(client, csrf, sid, photo)
    assert again.status == 409
    resp = await client.post(
        f"/api/v1/subjects/{sid}/faces/{face['id']}/approve", headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 200 and (await resp.json())["state"] == "approved"
    listed = await (await client.get(f"/api/v1/subjects/{sid}/faces")).json()
    assert [(f["id"], f["state"]) for f in listed["faces"]] == [(face["id"], "approved")]
    resp = await client.delete(
        f"/api/v1/subjects/{sid}/faces/{face['id']}", headers={"X-CSRF-Token": csrf}
    )
    assert resp.status == 200
    listed = await (await client.get(f"/api/v1/subjects/{sid}/faces")).json()
    assert listed["faces"] == []
    assert await audit_actions(client) == ["face.enrolled", "face.approved", "face.deleted"]


async def test_at_most_five_and_unusable_photos_refused(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "street1")
    sid = subject_of(client)
    for name, img in (("blank", fi.fake_camera()), ("two", fi.second_face_pasted())):
        resp = await enrol(client, csrf, sid, fi.jpeg(img))
        assert resp.status == 422, name
        body = await resp.json()
        assert body["error"]["details"]["outcome"] in ("no_face", "several_faces"), body
    resp = await enrol(client, csrf, sid, b"\xff\xd8 not really a jpeg")
    assert resp.status == 422
    variants = [
        fi.astronaut(),
        fi.crop(),
        fi.darkened(0.6),
        fi.mirrored(),
        fi.scaled(0.8),
        fi.scaled(0.9),
    ]
    codes = [(await enrol(client, csrf, sid, fi.jpeg(v))).status for v in variants]
    assert codes == [201, 201, 201, 201, 201, 409]
    assert await audit_actions(client) == ["face.enrolled"] * 5


async def test_other_streets_subject_is_not_found(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "street1")
    other = subject_of(client, "subject3")  # street2's office
    resp = await enrol(client, csrf, other, fi.jpeg(fi.astronaut()))
    assert resp.status == 404
    assert (await client.get(f"/api/v1/subjects/{other}/faces")).status == 404
    assert (await client.get("/api/v1/subjects/nobody/faces")).status == 404
    assert await audit_actions(client) == []
