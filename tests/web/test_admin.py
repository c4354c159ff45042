"""The administrator's API (web/admin.py, web/admin_audit.py): users, keys, the audit log."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from center.clock import FakeClock
from tests.conftest import AppFactory, login
from web import keys


async def _json(resp: Any, status: int) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _street(client: TestClient) -> str:
    return client.app[keys.TREE].by_level("street")[0].id


async def test_user_lifecycle_audited_with_before_and_after(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    street = await _street(client)
    csrf = await login(client, "admin")
    h = {"X-CSRF-Token": csrf}
    created = await _json(
        await client.post(
            "/api/v1/admin/users",
            json={"username": "street9", "role": "street", "jurisdiction": street},
            headers=h,
        ),
        201,
    )
    user, password = created["user"], created["password"]
    assert user["role"] == "street" and user["last_login_at"] is None and len(password) >= 12
    # the password works, once; the list shows the last login, never a password
    await login(client, "street9", password)
    resp = await client.get("/api/v1/me")
    assert "street9" in json.dumps(await _json(resp, 200))
    csrf = await login(client, "admin")
    h = {"X-CSRF-Token": csrf}
    listed = await _json(await client.get("/api/v1/admin/users"), 200)
    row = next(u for u in listed["items"] if u["username"] == "street9")
    assert row["last_login_at"] is not None and "password" not in json.dumps(listed)

    district = client.app[keys.TREE].by_level("district")[0].id
    changed = await _json(
        await client.patch(
            f"/api/v1/admin/users/{user['id']}",
            json={"role": "district", "jurisdiction": district},
            headers=h,
        ),
        200,
    )
    assert (changed["role"], changed["jurisdiction"]) == ("district", district)
    reset = await _json(
        await client.post(f"/api/v1/admin/users/{user['id']}/password", headers=h), 200
    )
    assert reset["password"] != password
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "street9", "password": password}
    )
    assert resp.status == 401
    # bad input is a 4xx that changes nothing
    resp = await client.patch(
        f"/api/v1/admin/users/{user['id']}", json={"role": "subject"}, headers=h
    )
    assert resp.status == 422
    resp = await client.patch("/api/v1/admin/users/999999", json={"role": "duty"}, headers=h)
    assert resp.status == 404

    page = await _json(await client.get("/api/v1/audit?object=user:street9&limit=50"), 200)
    actions = [e["action"] for e in page["items"]]
    assert actions == [
        "auth.login_failed",
        "user.password",
        "user.update",
        "auth.login",
        "user.create",
    ], actions
    update = next(e for e in page["items"] if e["action"] == "user.update")
    details = json.loads(update["details"])
    assert details["before"]["role"] == "street" and details["after"]["role"] == "district"
    assert update["actor"] == "user:admin"
    assert (await _json(await client.get("/api/v1/audit/verify"), 200))["ok"] is True

    resp = await client.get("/api/v1/audit.csv?action=user.")
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert {"id", "prev_hash", "hash"} <= set(rows[0])
    assert {r["action"] for r in rows} >= {"user.create", "user.update", "user.password"}
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids)


async def test_key_created_once_then_revoked_is_refused(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "admin")
    created = await _json(
        await client.post(
            "/api/v1/keys", json={"name": "vendor-x"}, headers={"X-CSRF-Token": csrf}
        ),
        201,
    )
    secret, key = created["secret"], created["key"]
    assert secret.startswith("ck_") and key["kind"] == "api_key"
    listed = await _json(await client.get("/api/v1/keys"), 200)
    assert secret not in json.dumps(listed)
    async with client.app[keys.SESSIONMAKER]() as session:
        from sqlalchemy import select

        from center.models import Subject

        subject_id = (await session.scalars(select(Subject.id).limit(1))).one()
    item = {
        "subject_id": subject_id,
        "at": (fake_clock.now() - timedelta(minutes=1)).isoformat(),
        "source": "app",
    }
    auth = {"Authorization": f"Bearer {secret}"}
    client.session.cookie_jar.clear()
    resp = await client.post("/api/v1/checkins", json={**item, "event_id": "k1"}, headers=auth)
    assert resp.status == 201, await resp.text()
    csrf = await login(client, "admin")
    resp = await client.delete(f"/api/v1/keys/{key['id']}", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    client.session.cookie_jar.clear()
    resp = await client.post("/api/v1/checkins", json={**item, "event_id": "k2"}, headers=auth)
    assert resp.status == 401


async def test_only_administrators(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    csrf = await login(client, "duty1")
    for method, url in (
        ("GET", "/api/v1/admin/users"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/audit/verify"),
        ("GET", "/api/v1/audit.csv"),
        ("POST", "/api/v1/keys"),
    ):
        resp = await client.request(
            method, url, json={"name": "x"} if method == "POST" else None,
            headers={"X-CSRF-Token": csrf},
        )  # fmt: skip
        assert resp.status == 403, (url, resp.status)
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 403
    await login(client, "admin")
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/admin"
    resp = await client.get("/admin")
    assert resp.status == 200 and 'id="users"' in await resp.text()


async def test_admin_revokes_a_suppression_and_cancels_a_leave(
    make_client: AppFactory, fake_clock: FakeClock, database_url: str
) -> None:
    from tests.alerts.conftest import subject_of_level

    client = await make_client(demo=True, database_url=database_url)
    subject = await subject_of_level(client, "normal")
    engine = client.app[keys.ALERTS]
    now = fake_clock.now()
    csrf = await login(client, "duty1")
    h = {"X-CSRF-Token": csrf}
    sup = await _json(
        await client.post(
            f"/api/v1/subjects/{subject.id}/suppressions",
            json={"reason": "住院", "until": (now + timedelta(days=3)).isoformat()},
            headers=h,
        ),
        201,
    )
    lv = await _json(
        await client.post(
            f"/api/v1/subjects/{subject.id}/leaves",
            json={"destination": "广州", "ends_at": (now + timedelta(days=2)).isoformat()},
            headers=h,
        ),
        201,
    )
    ts = now.timestamp() + 60
    assert engine.suppressions.active_for(subject.id, "no_checkin", ts) is not None
    assert engine.leaves.on_leave(subject.id, ts)
    # a duty officer may not use the administrator's endpoints
    assert (await client.get("/api/v1/admin/suppressions")).status == 403

    csrf = await login(client, "admin")
    h = {"X-CSRF-Token": csrf}
    listed = await _json(await client.get("/api/v1/admin/suppressions"), 200)
    assert [s["id"] for s in listed["items"]] == [sup["id"]]
    revoked = await _json(
        await client.delete(f"/api/v1/admin/suppressions/{sup['id']}", headers=h), 200
    )
    assert revoked["revoked_at"] is not None
    again = await _json(
        await client.delete(f"/api/v1/admin/suppressions/{sup['id']}", headers=h), 200
    )
    assert again["revoked_at"] == revoked["revoked_at"]
    assert engine.suppressions.active_for(subject.id, "no_checkin", ts) is None

    listed = await _json(await client.get("/api/v1/admin/leaves"), 200)
    assert [x["id"] for x in listed["items"]] == [lv["id"]]
    cancelled = await _json(
        await client.post(f"/api/v1/admin/leaves/{lv['id']}/cancel", headers=h), 200
    )
    assert cancelled["state"] == "cancelled"
    assert not engine.leaves.on_leave(subject.id, ts)
    assert (await client.post("/api/v1/admin/leaves/99999/cancel", headers=h)).status == 404

    page = await _json(await client.get(f"/api/v1/audit?object=subject:{subject.id}"), 200)
    by_action = {e["action"]: json.loads(e["details"]) for e in page["items"]}
    assert by_action["suppression.revoke"]["before"]["revoked_at"] is None
    assert by_action["suppression.revoke"]["after"]["revoked_at"]
    assert by_action["leave.cancel"]["before"] == {"state": "active"}
    assert by_action["leave.cancel"]["after"] == {"state": "cancelled"}


async def test_csv_import_reports_each_bad_row_and_keeps_the_good_ones(
    make_client: AppFactory, database_url: str
) -> None:
    from center.models import Subject

    client = await make_client(demo=True, database_url=database_url)
    tree = client.app[keys.TREE]
    street = tree.by_level("street")[0].id
    district = tree.by_level("district")[0].id
    async with client.app[keys.SESSIONMAKER]() as session:
        from sqlalchemy import select

        existing = (await session.scalars(select(Subject).limit(1))).one()
    text = "\n".join(
        [
            "id,name,level,street_id,phone",
            f"IMP-1,张三,strict,{street},13800000000",
            f"IMP-2,李四,severe,{street},",  # bad level
            f"IMP-3,,normal,{street},",  # no name
            f"IMP-4,王五,normal,{district},",  # a district, not a street
            f"{existing.id},{existing.name},lenient,{street},",  # update
            f"IMP-1,张三,normal,{street},",  # twice
            f"IMP-5,赵六,normal,{street},",
        ]
    )
    csrf = await login(client, "admin")
    report = await _json(
        await client.post(
            "/api/v1/admin/subjects/import", json={"csv": text}, headers={"X-CSRF-Token": csrf}
        ),
        200,
    )
    by_line = {r["line"]: r for r in report["rows"]}
    assert [by_line[n]["status"] for n in range(2, 9)] == [
        "created", "rejected", "rejected", "rejected", "updated", "rejected", "created",
    ]  # fmt: skip
    assert "level" in by_line[3]["error"] and "name" in by_line[4]["error"]
    assert "not a street" in by_line[5]["error"] and "twice" in by_line[7]["error"]
    assert (report["created"], report["updated"], report["rejected"]) == (2, 1, 4)
    async with client.app[keys.SESSIONMAKER]() as session:
        assert (await session.get(Subject, "IMP-1")).level == "strict"  # type: ignore[union-attr]
        assert await session.get(Subject, "IMP-2") is None
        updated = await session.get(Subject, existing.id)
        assert updated is not None and updated.level == "lenient"
    engine = client.app[keys.ALERTS]
    assert engine.directory.get("IMP-5") is not None  # watched without a restart
    page = await _json(await client.get(f"/api/v1/audit?object=subject:{existing.id}"), 200)
    change = next(e for e in page["items"] if e["action"] == "subject.update")
    assert json.loads(change["details"])["after"]["level"] == "lenient"
    # a missing column is one 422 for the file
    resp = await client.post(
        "/api/v1/admin/subjects/import",
        json={"csv": "id,name\nX,Y"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status == 422


async def test_subjects_list_search_page_edit_street_and_export_round_trip(
    make_client: AppFactory,
) -> None:
    from center.models import Subject

    client = await make_client(demo=True)
    tree = client.app[keys.TREE]
    csrf = await login(client, "admin")
    h = {"X-CSRF-Token": csrf}
    first = await _json(await client.get("/api/v1/admin/subjects?page_size=10"), 200)
    second = await _json(await client.get("/api/v1/admin/subjects?page_size=10&page=2"), 200)
    assert first["total"] == 2000 and len(first["items"]) == 10
    assert {s["id"] for s in first["items"]}.isdisjoint({s["id"] for s in second["items"]})
    one = first["items"][0]
    found = await _json(await client.get(f"/api/v1/admin/subjects?q={one['name']}"), 200)
    assert one["id"] in {s["id"] for s in found["items"]}
    nothing = await _json(await client.get("/api/v1/admin/subjects?q=%25_none"), 200)
    assert nothing["total"] == 0  # LIKE wildcards are matched literally
    strict = await _json(await client.get("/api/v1/admin/subjects?level=strict"), 200)
    assert strict["total"] > 0 and {s["level"] for s in strict["items"]} == {"strict"}

    other = next(n.id for n in tree.by_level("street") if n.id != one["street_id"])
    moved = await _json(
        await client.patch(
            f"/api/v1/admin/subjects/{one['id']}", json={"street_id": other}, headers=h
        ),
        200,
    )
    node = tree.get(other)
    assert node is not None
    assert (moved["street_id"], moved["district_id"]) == (other, node.parent_id)
    info = client.app[keys.ALERTS].directory.get(one["id"])
    assert info is not None and info.street_id == other  # the engine knows at once
    page = await _json(await client.get(f"/api/v1/audit?object=subject:{one['id']}"), 200)
    change = next(e for e in page["items"] if e["action"] == "subject.update")
    details = json.loads(change["details"])
    assert (details["before"]["street_id"], details["after"]["street_id"]) == (
        one["street_id"],
        other,
    )
    district = tree.by_level("district")[0].id
    resp = await client.patch(
        f"/api/v1/admin/subjects/{one['id']}", json={"street_id": district}, headers=h
    )
    assert resp.status == 404  # a district is not a street

    resp = await client.get(f"/api/v1/admin/subjects.csv?q={one['id']}")
    assert resp.status == 200 and resp.content_type == "text/csv"
    text = await resp.text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [one["id"]] and rows[0]["street_id"] == other
    report = await _json(
        await client.post("/api/v1/admin/subjects/import", json={"csv": text}, headers=h), 200
    )
    assert [r["status"] for r in report["rows"]] == ["unchanged"]  # the export re-imports
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Subject, one["id"])
        assert row is not None and row.street_id == other

    # an administrator of one district sees and edits only its subjects
    created = await _json(
        await client.post(
            "/api/v1/admin/users",
            json={"username": "admin_d", "role": "admin", "jurisdiction": district},
            headers=h,
        ),
        201,
    )
    csrf_d = await login(client, "admin_d", created["password"])
    mine = await _json(await client.get("/api/v1/admin/subjects?page_size=500"), 200)
    streets = set(tree.descendants(district, "street"))
    assert mine["total"] < 2000 and {s["street_id"] for s in mine["items"]} <= streets
    outside = next(
        s
        for s in first["items"] + second["items"]
        if s["street_id"] not in streets and s["id"] != one["id"]  # (one was moved)
    )
    resp = await client.patch(
        f"/api/v1/admin/subjects/{outside['id']}",
        json={"level": "strict"},
        headers={"X-CSRF-Token": csrf_d},
    )
    assert resp.status == 404
    mine_street = sorted(streets)[0]
    text = f"id,name,level,street_id\n{outside['id']},x,normal,{mine_street}\n"
    report = await _json(
        await client.post(
            "/api/v1/admin/subjects/import", json={"csv": text}, headers={"X-CSRF-Token": csrf_d}
        ),
        200,
    )
    assert [r["status"] for r in report["rows"]] == ["rejected"]  # not moved into my district
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Subject, outside["id"])
        assert row is not None and row.street_id == outside["street_id"]
