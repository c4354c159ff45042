"""The ingestion API: idempotency, per-item answers, limits, keys and jurisdiction."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from alerts.models import Checkin
from center.clock import FakeClock
from center.identity import create_credential
from center.models import CredentialKind
from tests.alerts.conftest import event_id, key_headers, subject_of_level
from tests.conftest import AppFactory, demo_credentials, login
from web import keys


async def _count(client, model=Checkin) -> int:  # type: ignore[no-untyped-def]
    async with client.app[keys.SESSIONMAKER]() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_single_checkin_is_idempotent(
    database_url: str, make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    subject = await subject_of_level(client, "strict")
    body = {
        "event_id": "abc-1",
        "subject_id": subject.id,
        "at": (fake_clock.now() - timedelta(minutes=1)).isoformat(),
        "source": "app",
        "lat": 22.54,
        "lon": 114.05,
        "accuracy_m": 15,
        "face_verified": True,
    }
    seen: list = []
    client.app[keys.BUS].subscribe("checkins", seen.append)
    first = await client.post("/api/v1/checkins", json=body, headers=key_headers(client))
    assert first.status == 201
    one = await first.json()
    assert one["status"] == "accepted" and one["late"] is False and one["window_start"]
    # a repeat — even with different content — returns the first result and changes nothing
    again = await client.post(
        "/api/v1/checkins", json={**body, "source": "terminal"}, headers=key_headers(client)
    )
    assert again.status == 200
    two = await again.json()
    assert two == {**one, "status": "duplicate"}
    assert await _count(client) == 1
    assert [m.type for m in seen] == ["checkin.recorded"]
    data = seen[0].data
    assert data["subject_id"] == subject.id and data["district_id"] == subject.district_id
    assert data["late"] is False and data["on_leave"] is False and data["source"] == "app"


async def test_mixed_batch_answers_per_item(
    database_url: str, make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    subject = await subject_of_level(client, "normal")
    at = fake_clock.now().isoformat()
    good = {"event_id": event_id(), "subject_id": subject.id, "at": at, "source": "app"}
    items = [
        good,
        {"event_id": event_id(), "subject_id": "nobody", "at": at, "source": "app"},
        {
            "event_id": event_id(),
            "subject_id": subject.id,
            "at": "2026-11-25T09:00:00",
            "source": "app",
        },
        {**good, "event_id": event_id()},
        dict(good),
        "not an object",
        {"event_id": event_id(), "subject_id": subject.id, "at": at, "source": "fax"},
        {"event_id": event_id(), "subject_id": subject.id, "at": at, "source": "app", "lat": 22.5},
    ]
    resp = await client.post("/api/v1/checkins", json={"items": items}, headers=key_headers(client))
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "rejected",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert results[1]["error"]["code"] == "not_found"
    assert results[2]["error"]["details"]["field"] == "at"
    assert results[6]["error"]["details"]["field"] == "source"
    assert results[7]["error"]["details"]["field"] == "lon"
    assert all(r["error"]["message"] for r in results if r["status"] == "rejected")
    assert await _count(client) == 2


async def test_device_events_and_locations_batches(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "normal")
    at = fake_clock.now().isoformat()
    ev = {
        "event_id": "d1",
        "subject_id": subject.id,
        "device_id": "b1",
        "kind": "low_battery",
        "at": at,
    }
    resp = await client.post(
        "/api/v1/device-events",
        json={"items": [ev, ev, {**ev, "event_id": "d2", "kind": "melted"}]},
        headers=key_headers(client),
    )
    statuses = [r["status"] for r in (await resp.json())["results"]]
    assert statuses == ["accepted", "duplicate", "rejected"]
    fx = {
        "event_id": "f1",
        "subject_id": subject.id,
        "device": "phone",
        "at": at,
        "lat": 22.54,
        "lon": 114.05,
        "accuracy_m": 10,
    }
    resp = await client.post("/api/v1/locations", json=fx, headers=key_headers(client))
    assert resp.status == 201
    resp = await client.post("/api/v1/locations", json=fx, headers=key_headers(client))
    assert resp.status == 200 and (await resp.json())["status"] == "duplicate"
    resp = await client.post(
        "/api/v1/locations", json={**fx, "event_id": "f2", "lat": 91}, headers=key_headers(client)
    )
    assert resp.status == 422
    assert (await resp.json())["error"] == {
        "code": "validation_failed",
        "message": "'lat' must be at most 90",
        "details": {"field": "lat", "fields": {"lat": "must be at most 90"}},
    }


async def test_oversize_bodies_and_batches(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, max_body_bytes=4096, ingest_max_batch=10)
    subject = await subject_of_level(client, "normal")
    item = {
        "event_id": "x",
        "subject_id": subject.id,
        "at": fake_clock.now().isoformat(),
        "source": "app",
    }
    big = {"items": [dict(item, event_id=f"x{i}", pad="y" * 500) for i in range(10)]}
    resp = await client.post("/api/v1/checkins", json=big, headers=key_headers(client))
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"
    many = {"items": [dict(item, event_id=f"m{i}") for i in range(11)]}
    resp = await client.post("/api/v1/checkins", json=many, headers=key_headers(client))
    assert resp.status == 413
    body = await resp.json()
    assert body["error"]["details"] == {"max_items": 10}
    assert await _count(client) == 0


async def test_keys_and_bodies(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "normal")
    item = {
        "event_id": "k1",
        "subject_id": subject.id,
        "at": fake_clock.now().isoformat(),
        "source": "app",
    }
    resp = await client.post("/api/v1/checkins", json=item)
    assert resp.status == 401
    resp = await client.post(
        "/api/v1/checkins", json=item, headers={"Authorization": "Bearer ck_nope"}
    )
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
    wall = demo_credentials(client)["wall_token"]
    resp = await client.post(
        "/api/v1/checkins", json=item, headers={"Authorization": f"Bearer {wall}"}
    )
    assert resp.status == 403
    csrf = await login(client, "duty1")
    resp = await client.post("/api/v1/checkins", json=item, headers={"X-CSRF-Token": csrf})
    assert resp.status == 403
    h = key_headers(client)
    resp = await client.post(
        "/api/v1/checkins", data="{nope", headers={**h, "Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post(
        "/api/v1/checkins", data="x", headers={**h, "Content-Type": "text/plain"}
    )
    assert resp.status == 415
    resp = await client.post("/api/v1/checkins", json=[item], headers=h)
    assert resp.status == 400
    resp = await client.post("/api/v1/checkins", json={"items": {}}, headers=h)
    assert resp.status == 400
    resp = await client.post("/api/v1/checkins", json={"items": []}, headers=h)
    assert resp.status == 422
    assert await _count(client) == 0


async def test_key_outside_jurisdiction(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True)
    async with client.app[keys.SESSIONMAKER]() as session:
        _, secret = await create_credential(
            session,
            kind=CredentialKind.API_KEY,
            name="futian-terminals",
            jurisdiction_id="440304",
            actor="test",
            now=fake_clock.now(),
        )
        await session.commit()
    subjects = [await subject_of_level(client, "normal", n) for n in range(40)]
    inside = next(s for s in subjects if s.district_id == "440304")
    outside = next(s for s in subjects if s.district_id != "440304")
    at = fake_clock.now().isoformat()
    resp = await client.post(
        "/api/v1/checkins",
        json={
            "items": [
                {"event_id": "j1", "subject_id": inside.id, "at": at, "source": "terminal"},
                {"event_id": "j2", "subject_id": outside.id, "at": at, "source": "terminal"},
            ]
        },
        headers={"Authorization": f"Bearer {secret}"},
    )
    results = (await resp.json())["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["error"]["code"] == "not_found"


async def test_rate_limit_per_key(make_client: AppFactory, fake_clock: FakeClock) -> None:
    client = await make_client(demo=True, ingest_rate_per_s=1, ingest_burst=3)
    subject = await subject_of_level(client, "normal")

    def item(n: int) -> dict[str, str]:
        return {
            "event_id": f"r{n}",
            "subject_id": subject.id,
            "at": fake_clock.now().isoformat(),
            "source": "app",
        }

    for n in range(3):
        resp = await client.post("/api/v1/checkins", json=item(n), headers=key_headers(client))
        assert resp.status == 201
    resp = await client.post("/api/v1/checkins", json=item(3), headers=key_headers(client))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limited"
    await fake_clock.advance(2)
    resp = await client.post("/api/v1/checkins", json=item(3), headers=key_headers(client))
    assert resp.status == 201
    assert await _count(client) == 4


_WRONG = ({}, [], 7, None, True)


def _items(subject_id: str, at: str) -> dict[str, tuple[str, dict[str, object], list[str]]]:
    """Per endpoint: a good item and its string fields (each must be refused as a non-string)."""
    return {
        "/api/v1/checkins": (
            "checkins",
            {"event_id": "", "subject_id": subject_id, "at": at, "source": "app"},
            ["event_id", "subject_id", "at", "source"],
        ),
        "/api/v1/device-events": (
            "device_events",
            {"event_id": "", "subject_id": subject_id, "device_id": "b1", "kind": "sos", "at": at},
            ["event_id", "subject_id", "device_id", "kind", "at"],
        ),
        "/api/v1/locations": (
            "locations",
            {
                "event_id": "",
                "subject_id": subject_id,
                "device": "phone",
                "device_id": "p1",
                "at": at,
                "lat": 22.54,
                "lon": 114.05,
                "accuracy_m": 10,
            },
            ["event_id", "subject_id", "device", "device_id", "at"],
        ),
    }


async def test_wrong_types_in_every_string_field_are_per_item_422s(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """An object, an array, a number, null or a boolean where a string belongs: each item is
    refused on its own (422, naming the field), the good neighbours are stored, and a single
    bad item is a 422 — never a 5xx (an object in ``kind`` or ``device`` once crashed)."""
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "normal")
    at = fake_clock.now().isoformat()
    for path, (_, good, fields) in _items(subject.id, at).items():
        cases = [
            (name, wrong)
            for name in fields
            for wrong in _WRONG
            # optional on a location fix: null there means "the device type"
            if not (name == "device_id" and wrong is None and path == "/api/v1/locations")
        ]
        items = [{**good, "event_id": event_id(), name: wrong} for name, wrong in cases]
        items.append({**good, "event_id": event_id()})
        resp = await client.post(path, json={"items": items}, headers=key_headers(client))
        assert resp.status == 200, (path, await resp.text())
        results = (await resp.json())["results"]
        assert [r["status"] for r in results] == ["rejected"] * len(cases) + ["accepted"]
        for (name, wrong), result in zip(cases, results, strict=False):
            assert result["error"]["code"] == "validation_failed", (path, name, wrong)
            assert name in result["error"]["details"]["fields"], (path, name, wrong, result)
        for name, wrong in cases:
            one = {**good, "event_id": event_id(), name: wrong}
            resp = await client.post(path, json=one, headers=key_headers(client))
            assert resp.status == 422, (path, name, wrong, await resp.text())
            err = (await resp.json())["error"]
            assert err["code"] == "validation_failed" and err["details"]["field"] == name


async def test_huge_and_strange_numbers_never_lose_the_batch(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    """A 401-digit integer, 1e400 or a boolean in a number field rejects only its item."""
    client = await make_client(demo=True)
    subject = await subject_of_level(client, "normal")
    at = fake_clock.now().isoformat()
    huge = "1" + "0" * 400
    for path, (_, good, _) in _items(subject.id, at).items():
        parts = []
        for name in ("lat", "lon", "accuracy_m", "battery_pct"):
            for raw in (huge, "-" + huge, "1e400", "true", '"5"'):
                item = dict(good, event_id=event_id())
                if path == "/api/v1/checkins" and name in ("lat", "lon"):
                    item.update(lat=22.5, lon=114.0)
                text = json.dumps(item)[:-1] + f', "{name}": {raw}}}'
                if name == "battery_pct" and path != "/api/v1/device-events":
                    continue
                if name in ("lat", "lon", "accuracy_m") and path == "/api/v1/device-events":
                    continue
                parts.append(text)
        goods = [json.dumps(dict(good, event_id=event_id())) for _ in range(2)]
        raw_body = '{"items": [' + ", ".join([goods[0], *parts, goods[1]]) + "]}"
        resp = await client.post(
            path,
            data=raw_body,
            headers={**key_headers(client), "Content-Type": "application/json"},
        )
        assert resp.status == 200, (path, await resp.text())
        statuses = [r["status"] for r in (await resp.json())["results"]]
        assert statuses == ["accepted"] + ["rejected"] * len(parts) + ["accepted"], path
        for text in parts:
            resp = await client.post(
                path,
                data=text,
                headers={**key_headers(client), "Content-Type": "application/json"},
            )
            assert resp.status == 422, (path, text[-60:], await resp.text())
