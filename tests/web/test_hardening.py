"""Issue 11's failures, each sent exactly as it was found against the running demo: a 4xx in
the one error envelope (never a 5xx), a per-item result in batches, and nothing good lost
or half applied. Runs on SQLite and on PostgreSQL (which refuses NUL in text and has 32-bit
integer columns)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from alerts.models import Alarm, Checkin
from center.clock import FakeClock
from tests.alerts.conftest import event_id, key_headers, subject_of_level
from tests.alerts.workflow_support import raise_alarm
from tests.conftest import AppFactory, demo_credentials, login
from web import keys

HUGE = int("9" * 401)
DEEP = "[" * 100_000 + "]" * 100_000


async def _error(resp: Any, status: int | tuple[int, ...], what: object = "") -> dict[str, Any]:
    statuses = (status,) if isinstance(status, int) else status
    text = await resp.text()
    assert resp.status in statuses, (what, resp.status, text)
    body: dict[str, Any] = await resp.json()
    assert set(body) == {"error"}, (what, body)
    return body["error"]


async def _count(client: TestClient, model: Any) -> int:
    async with client.app[keys.SESSIONMAKER]() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _checkin(subject_id: str, clock: FakeClock, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id("hard"),
        "subject_id": subject_id,
        "at": (clock.now() - timedelta(minutes=1)).isoformat(),
        "source": "app",
        "lat": 22.54,
        "lon": 114.05,
        "accuracy_m": 10,
        **extra,
    }


async def test_huge_numbers_keep_the_good_items(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    """Failure 3: a 401-digit number in one item is that item's 422; its neighbours stored."""
    client = await make_client(demo=True, database_url=database_url)
    subject = await subject_of_level(client, "normal")
    headers = {**key_headers(client), "Content-Type": "application/json"}
    for field in ("lat", "lon", "accuracy_m"):
        good = [_checkin(subject.id, fake_clock), _checkin(subject.id, fake_clock)]
        bad = _checkin(subject.id, fake_clock)
        # json.dumps would turn the int into a float; write the digits into the text
        huge = _dumps({**bad, field: "__HUGE__"}).replace('"__HUGE__"', str(HUGE))
        raw = f'{{"items": [{_dumps(good[0])}, {huge}, {_dumps(good[1])}]}}'
        before = await _count(client, Checkin)
        resp = await client.post("/api/v1/checkins", data=raw, headers=headers)
        assert resp.status in (200, 207), (field, resp.status, await resp.text())
        results = (await resp.json())["results"]
        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"], results
        assert results[1]["error"]["details"]["field"] == field
        assert await _count(client, Checkin) == before + 2
        # and on a single item
        single = _dumps({**bad, "event_id": event_id(), field: "__HUGE__"}).replace(
            '"__HUGE__"', str(HUGE)
        )
        resp = await client.post("/api/v1/checkins", data=single, headers=headers)
        error = await _error(resp, 422, field)
        assert error["details"]["field"] == field
    device = _dumps(
        {
            "event_id": event_id(),
            "subject_id": subject.id,
            "device_id": "b1",
            "kind": "low_battery",
            "at": fake_clock.now().isoformat(),
            "battery_pct": "__HUGE__",
        }
    ).replace('"__HUGE__"', str(HUGE))
    resp = await client.post("/api/v1/device-events", data=device, headers=headers)
    assert (await _error(resp, 422))["details"]["field"] == "battery_pct"
    for field in ("lat", "lon", "accuracy_m"):
        fix = {
            "event_id": event_id(),
            "subject_id": subject.id,
            "device": "phone",
            "at": fake_clock.now().isoformat(),
            "lat": 22.5,
            "lon": 114.0,
            "accuracy_m": 5,
        }
        raw = _dumps({**fix, field: "__HUGE__"}).replace('"__HUGE__"', f"-{HUGE}")
        resp = await client.post("/api/v1/locations", data=raw, headers=headers)
        assert (await _error(resp, 422))["details"]["field"] == field


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


async def test_deep_nesting_is_400_and_ws_stays_open(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """Failure 4: 100,000 levels of nesting on ingestion, actions and the login."""
    client = await make_client(demo=True)
    json_ct = {"Content-Type": "application/json"}
    for url in ("/api/v1/checkins", "/api/v1/device-events", "/api/v1/locations"):
        resp = await client.post(url, data=DEEP, headers={**key_headers(client), **json_ct})
        await _error(resp, 400, url)
    resp = await client.post("/api/v1/auth/login", data=DEEP, headers=json_ct)
    await _error(resp, 400, "login")
    csrf = await login(client, "duty1")
    for url in ("/api/v1/alarms/1/actions", "/api/v1/alarms/actions"):
        resp = await client.post(url, data=DEEP, headers={**json_ct, "X-CSRF-Token": csrf})
        await _error(resp, (400, 404), url)
    ws = await client.ws_connect("/ws")
    nested = "[" * 30_000 + "]" * 30_000  # 60 KB, under the frame limit
    await ws.send_str(nested)
    reply = await ws.receive_json(timeout=10)
    assert reply["type"] == "result" and reply["success"] is False, reply
    assert reply["error"]["code"] in ("invalid_format", "bad_request"), reply
    await ws.send_json({"id": 1, "type": "ping"})
    pong = await ws.receive_json(timeout=10)
    assert pong["id"] == 1, pong
    assert not ws.closed
    await ws.close()


async def test_unicode_digits_in_ids_are_404(make_client: AppFactory, database_url: str) -> None:
    """Failure 5: ``²`` passes ``str.isdigit`` but is no id."""
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "duty1")
    for raw in ("%C2%B2", "%D9%A3", "%EF%BC%91"):  # ², Arabic-Indic 3, fullwidth 1
        for path in (
            f"/api/v1/alarms/{raw}",
            f"/api/v1/alarms/{raw}/workflow",
            f"/api/v1/alarms/{raw}/evidence",
            f"/api/v1/evidence/{raw}",
        ):
            resp = await client.get(path)
            assert (await _error(resp, 404, path))["code"] == "not_found"
        resp = await client.post(
            f"/api/v1/alarms/{raw}/actions",
            json={"action": "acknowledge", "version": 1},
            headers={"X-CSRF-Token": csrf},
        )
        await _error(resp, 404, raw)
    resp = await client.post(
        "/api/v1/rooms",
        json={"kind": "call", "participants": ["²"]},
        headers={"X-CSRF-Token": csrf},
    )
    await _error(resp, (404, 422), "participant ²")
    resp = await client.post(
        "/api/v1/rooms",
        json={"kind": "call", "participants": ["user:²"]},
        headers={"X-CSRF-Token": csrf},
    )
    await _error(resp, (404, 422), "participant user:²")


async def test_bulk_out_of_range_ids_answer_per_item(
    make_client: AppFactory, database_url: str
) -> None:
    """Failure 6: a huge id beside a good one; ids past PostgreSQL's 32-bit columns."""
    client = await make_client(demo=True, database_url=database_url, simulator=False)
    csrf = await login(client, "duty1")
    headers = {"X-CSRF-Token": csrf}
    good = await raise_alarm(client)
    for bad_id in (10**400, 2**40, 2**31, -1, 0, "1", 1.5):
        resp = await client.post(
            "/api/v1/alarms/actions",
            json={
                "action": "acknowledge",
                "items": [{"id": bad_id, "version": 1}, {"id": good["id"], "version": 99}],
            },
            headers={**headers, "Content-Type": "application/json"},
        )
        assert resp.status == 200, (bad_id, resp.status, await resp.text())
        results = (await resp.json())["results"]
        assert [r["ok"] for r in results] == [False, False], results
        assert results[0]["status"] in (404, 422), results
        assert results[1]["status"] == 409, results  # stale version: refused, not applied
    # the good one with its true version is applied, the bad one beside it reported
    items = f'{{"id": {good["id"]}, "version": {good["version"]}}}, {{"id": {HUGE}, "version": 1}}'
    raw = f'{{"action": "acknowledge", "items": [{items}]}}'
    resp = await client.post(
        "/api/v1/alarms/actions", data=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 200, await resp.text()
    results = (await resp.json())["results"]
    assert [r["ok"] for r in results] == [True, False], results
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Alarm, good["id"])
        assert row is not None and row.state == "acknowledged"
    for path in (f"/api/v1/alarms/{2**40}", f"/api/v1/evidence/{2**40}"):
        await _error(await client.get(path), 404, path)
    resp = await client.post(
        "/api/v1/rooms",
        json={"kind": "call", "participants": [f"user:{2**40}"]},
        headers=headers,
    )
    await _error(resp, (404, 422), "user:2**40")
    resp = await client.post(
        "/api/v1/duty/sign-on",
        json={"shift_id": 2**40},
        headers=headers,
    )
    await _error(resp, (404, 422), "sign-on shift 2**40")
    for officer in ("nobody-here", "street1", f"user:{2**40}"):
        resp = await client.post(
            "/api/v1/duty/shifts",
            json={
                "starts_at": "2026-11-26T00:00:00+08:00",
                "ends_at": "2026-11-26T08:00:00+08:00",
                "officers": ["duty1", officer],
                "jurisdiction": "4403",
            }
            if officer != "street1"
            else {
                # street1 works in Futian; a Luohu roster cannot name them
                "starts_at": "2026-11-26T00:00:00+08:00",
                "ends_at": "2026-11-26T08:00:00+08:00",
                "officers": [officer],
                "jurisdiction": "440303",
            },
            headers=headers,
        )
        error = await _error(resp, 422, ("officer", officer))
        assert error["details"]["field"].startswith("officers["), error


async def test_extreme_dates_are_422(make_client: AppFactory, database_url: str) -> None:
    """Failure 7: dates at the ends of the calendar."""
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "duty1")
    for url, field in (
        ("/api/v1/reports/daily?date=9999-12-31", "date"),
        ("/api/v1/reports/daily?date=0001-01-01", "date"),
        ("/api/v1/reports/daily.csv?date=9999-12-31", "date"),
        ("/api/v1/reports/range?from=0001-01-01&to=0001-01-02", "from"),
        ("/api/v1/reports/range?from=9999-12-30&to=9999-12-31", "from"),
        ("/api/v1/reports/range.csv?from=9999-12-30&to=9999-12-31", "from"),
        ("/api/v1/duty/shifts?from=" + quote("9999-12-31T23:59:59-14:00"), "from"),
        ("/api/v1/duty/shifts?from=" + quote("0001-01-01T00:00:00+14:00"), "from"),
    ):
        error = await _error(await client.get(url), 422, url)
        assert error["details"]["field"] == field, (url, error)
    shift = {
        "officers": ["duty1"],
        "starts_at": "9999-12-31T00:00:00+08:00",
        "ends_at": "9999-12-31T08:00:00+08:00",
    }
    resp = await client.post("/api/v1/duty/shifts", json=shift, headers={"X-CSRF-Token": csrf})
    assert (await _error(resp, 422))["details"]["field"] in ("starts_at", "ends_at")
    subject = (await (await client.get("/api/v1/subjects?page_size=1")).json())["items"][0]
    resp = await client.post(
        f"/api/v1/subjects/{subject['id']}/leaves",
        json={"destination": "广州", "ends_at": "9999-12-31T00:00:00+08:00"},
        headers={"X-CSRF-Token": csrf},
    )
    assert (await _error(resp, 422))["details"]["field"] == "ends_at"


async def test_objects_where_a_kind_is_expected(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    """Failure 8: unhashable values where an enum is expected."""
    client = await make_client(demo=True, database_url=database_url)
    csrf = await login(client, "duty1")
    subject = await subject_of_level(client, "normal")
    soon = (fake_clock.now() + timedelta(days=1)).isoformat()
    resp = await client.post(
        f"/api/v1/subjects/{subject.id}/suppressions",
        json={"reason": "住院", "until": soon, "kinds": [{"a": 1}]},
        headers={"X-CSRF-Token": csrf},
    )
    assert (await _error(resp, 422))["details"]["field"].startswith("kinds")
    at = fake_clock.now().isoformat()
    resp = await client.post(
        "/api/v1/device-events",
        json={
            "event_id": event_id(),
            "subject_id": subject.id,
            "device_id": "b",
            "kind": {},
            "at": at,
        },
        headers=key_headers(client),
    )
    assert (await _error(resp, 422))["details"]["field"] == "kind"
    resp = await client.post(
        "/api/v1/locations",
        json={
            "event_id": event_id(),
            "subject_id": subject.id,
            "device": {},
            "at": at,
            "lat": 22.5,
            "lon": 114.0,
            "accuracy_m": 5,
        },
        headers=key_headers(client),
    )
    assert (await _error(resp, 422))["details"]["field"] == "device"


async def test_nul_in_text_is_422_on_both_databases(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    """Failure 9: NUL in every free-text field, query and path segment."""
    client = await make_client(demo=True, database_url=database_url, simulator=False)
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "duty1\x00", "password": "whatever-it-is"}
    )
    assert (await _error(resp, 422))["details"]["field"] == "username"
    csrf = await login(client, "duty1")
    headers = {"X-CSRF-Token": csrf}
    subject = await subject_of_level(client, "normal")
    soon = (fake_clock.now() + timedelta(days=1)).isoformat()
    base = f"/api/v1/subjects/{subject.id}"
    for url, body, field in (
        (f"{base}/leaves", {"destination": "广\x00州", "ends_at": soon}, "destination"),
        (f"{base}/leaves", {"destination": "广州", "ends_at": soon, "reason": "a\x00"}, "reason"),
        (f"{base}/suppressions", {"reason": "住\x00院", "until": soon, "kinds": []}, "reason"),
        ("/api/v1/wall/pairing-codes", {"name": "n\x00", "jurisdiction": "440304"}, "name"),
        ("/api/v1/duty/sign-off", {"handover_note": "x\x00"}, "handover_note"),
        (
            "/api/v1/duty/shifts",
            {
                "starts_at": "2026-11-26T00:00:00+08:00",
                "ends_at": "2026-11-26T08:00:00+08:00",
                "note": "夜班\x00",
            },
            "note",
        ),
    ):
        resp = await client.post(url, json=body, headers=headers)
        error = await _error(resp, 422, (url, field))
        assert error["details"]["field"] == field, (url, error)
    alarm = await raise_alarm(client)
    resp = await client.post(
        f"/api/v1/alarms/{alarm['id']}/actions",
        json={"action": "acknowledge", "version": alarm["version"], "note": "好\x00"},
        headers=headers,
    )
    assert (await _error(resp, 422))["details"]["field"] == "note"
    for url in (
        "/api/v1/subjects?q=%00",
        "/api/v1/alarms?subject=%00",
    ):
        await _error(await client.get(url), (404, 422), url)
    for url in ("/api/v1/subjects/a%00b", "/api/v1/subjects/a%00b/leaves"):
        await _error(await client.get(url), 404, url)


async def test_login_next_is_same_origin_only(make_client: AppFactory) -> None:
    """Failure 11: no open redirect from the login page."""
    client = await make_client(demo=True)
    await login(client, "duty1")
    for target in (
        "https://evil.example/phish",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:evil.example",
        " //evil.example",
        "javascript:alert(1)",
    ):
        resp = await client.get(f"/login?next={quote(target)}", allow_redirects=False)
        location = resp.headers.get("Location", "")
        assert resp.status in (302, 303), (target, resp.status)
        assert location.startswith("/") and not location.startswith(("//", "/\\")), (
            target,
            location,
        )
        assert "evil" not in location, (target, location)
    resp = await client.get("/login?next=/reports", allow_redirects=False)
    assert resp.headers["Location"] == "/reports"


async def test_like_wildcards_are_literal(make_client: AppFactory, database_url: str) -> None:
    """Failure 12: ``q=%`` and ``q=_`` match only names that hold them."""
    client = await make_client(demo=True, database_url=database_url)
    await login(client, "duty1")
    for q in ("%", "_", "%%", "\\"):
        body = await (await client.get(f"/api/v1/subjects?q={quote(q)}")).json()
        assert body["total"] == 0, (q, body["total"])


async def test_openapi_with_a_key_is_public(make_client: AppFactory) -> None:
    client = await make_client(demo=True)
    resp = await client.get("/api/v1/openapi.json", headers=key_headers(client))
    assert resp.status == 200, await resp.text()


async def test_a_second_demo_instance_leaves_the_first_alone(
    make_client: AppFactory, database_url: str, tmp_path: Any
) -> None:
    """Failure 12: seeding an already seeded database changes no password, key or token."""
    first = await make_client(demo=True, database_url=database_url)
    creds = demo_credentials(first)
    second = await make_client(
        demo=True, database_url=database_url, data_dir=str(tmp_path / "other")
    )
    assert demo_credentials(second)["users"]["duty1"]["password"] is None
    assert await login(first, "duty1", creds["users"]["duty1"]["password"])
    resp = await first.get("/api/v1/me", headers=key_headers(first))
    assert resp.status == 200
    resp = await second.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {creds['wall_token']}"}
    )
    assert resp.status == 200


async def test_personal_numbers_are_masked_unless_revealed(
    make_client: AppFactory, database_url: str
) -> None:
    """Failure 13: lists and details mask ID and phone numbers; a reveal is audited."""
    import re

    from center.models import AuditEntry, Subject

    client = await make_client(demo=True, database_url=database_url)
    await login(client, "street1")
    page = await (await client.get("/api/v1/subjects?page_size=50")).json()
    for item in page["items"]:
        assert re.fullmatch(r"\d{4}\*{10}[\dX]{4}", item["id_number"]), item["id_number"]
        assert re.fullmatch(r"\d{3}\*{4}\d{4}", item["phone"]), item["phone"]
    sid = page["items"][0]["id"]
    masked = await (await client.get(f"/api/v1/subjects/{sid}")).json()
    assert "*" in masked["id_number"] and "*" in masked["phone"]
    full = await (await client.get(f"/api/v1/subjects/{sid}?reveal=id_number,phone")).json()
    async with client.app[keys.SESSIONMAKER]() as session:
        row = await session.get(Subject, sid)
        assert row is not None
        assert (full["id_number"], full["phone"]) == (row.id_number, row.phone)
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "subject.reveal"))
        )
    assert [(e.actor, e.target_id) for e in entries] == [("user:street1", sid)]
    resp = await client.get(f"/api/v1/subjects/{sid}?reveal=password")
    assert resp.status == 422
    # out of scope: the same 404 as an unknown subject, and nothing revealed or audited
    async with client.app[keys.SESSIONMAKER]() as session:
        other = await session.scalar(select(Subject.id).where(Subject.district_id == "440303"))
    resp = await client.get(f"/api/v1/subjects/{other}?reveal=id_number")
    assert resp.status == 404
    async with client.app[keys.SESSIONMAKER]() as session:
        n = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "subject.reveal")
        )
    assert n == 1


async def test_event_ids_are_scoped_per_api_key(
    make_client: AppFactory, database_url: str, fake_clock: FakeClock
) -> None:
    """Failure 12: one integration's event id is no duplicate of another's."""
    from center.identity import create_credential
    from center.models import CredentialKind

    client = await make_client(demo=True, database_url=database_url)
    async with client.app[keys.SESSIONMAKER]() as session:
        _, other = await create_credential(
            session,
            kind=CredentialKind.API_KEY,
            name="vendor-b",
            jurisdiction_id="4403",
            actor="test",
            now=fake_clock.now(),
        )
        await session.commit()
    subject = await subject_of_level(client, "normal")
    at = (fake_clock.now() - timedelta(minutes=1)).isoformat()
    device = {"subject_id": subject.id, "device_id": "b1", "kind": "sos", "at": at}
    fix = {
        "subject_id": subject.id,
        "device": "phone",
        "at": at,
        "lat": 22.5,
        "lon": 114.0,
        "accuracy_m": 5,
    }
    for url, body in (
        ("/api/v1/checkins", {"subject_id": subject.id, "at": at, "source": "app"}),
        ("/api/v1/device-events", device),
        ("/api/v1/locations", fix),
    ):
        item = {**body, "event_id": "vendor-0001"}
        for headers, status in (
            (key_headers(client), "accepted"),
            ({"Authorization": f"Bearer {other}"}, "accepted"),
            (key_headers(client), "duplicate"),
            ({"Authorization": f"Bearer {other}"}, "duplicate"),
        ):
            resp = await client.post(url, json={"items": [item]}, headers=headers)
            assert resp.status < 300, (url, await resp.text())
            assert (await resp.json())["results"][0]["status"] == status, url
    assert await _count(client, Checkin) == 2


async def test_invitations_do_not_reveal_who_exists(make_client: AppFactory) -> None:
    """Failure 12: an unknown username and a user outside one's line answer alike."""
    client = await make_client(demo=True)
    csrf = await login(client, "street1")
    answers = []
    for name in ("street2", "nobody-at-all"):  # street2 works in another street office
        resp = await client.post(
            "/api/v1/rooms",
            json={"kind": "call", "participants": [name]},
            headers={"X-CSRF-Token": csrf},
        )
        error = await _error(resp, 422, name)
        answers.append(error["details"]["fields"]["participants[0]"].split(": ", 1)[1])
    assert answers[0] == answers[1], answers
