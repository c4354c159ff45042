"""Property-based fuzz (Hypothesis) of every ingestion item field and every workflow body:
any value in any field — wrong types, huge and non-finite numbers, control characters,
nested containers — is a 4xx or a per-item rejection, never a 5xx, and the good items of a
batch around a fuzzed one are stored. (The served OpenAPI document is fuzzed by schemathesis
in ``test_openapi.py``; this reaches the values a schema-driven generator rarely tries.)"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from center.clock import FakeClock
from tests.alerts.conftest import key_headers
from tests.alerts.workflow_support import raise_alarm
from tests.conftest import AppFactory, login

_ids = itertools.count()

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**420),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=8),  # control characters
    st.sampled_from(["²", "٣", "9999-12-31T23:59:59-14:00", "0001-01-01", "%", "\u2028"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _good(endpoint: str, subject_id: str, clock: FakeClock) -> dict[str, Any]:
    at = (clock.now() - timedelta(minutes=1)).isoformat()
    base = {"event_id": f"fz-{next(_ids)}", "subject_id": subject_id, "at": at}
    if endpoint == "checkins":
        return {**base, "source": "app", "lat": 22.5, "lon": 114.0, "accuracy_m": 5}
    if endpoint == "device-events":
        return {**base, "device_id": "b1", "kind": "low_battery", "battery_pct": 10}
    return {**base, "device": "phone", "lat": 22.5, "lon": 114.0, "accuracy_m": 5}


async def _subject(client: TestClient) -> str:
    await login(client, "duty1")
    page = await (await client.get("/api/v1/subjects?page_size=1")).json()
    return str(page["items"][0]["id"])


async def test_fuzzed_item_fields_never_cost_the_batch(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    subject_id = await _subject(client)
    headers = {**key_headers(client), "Content-Type": "application/json"}

    @FUZZ
    @given(
        endpoint=st.sampled_from(["checkins", "device-events", "locations"]),
        field=st.sampled_from(
            [
                "event_id",
                "subject_id",
                "at",
                "source",
                "kind",
                "device",
                "device_id",
                "lat",
                "lon",
                "accuracy_m",
                "battery_pct",
                "face_verified",
                "extra",
            ]
        ),
        value=VALUES,
    )
    def collect(endpoint: str, field: str, value: Any) -> None:
        cases.append((endpoint, field, value))

    cases: list[tuple[str, str, Any]] = []
    collect()  # Hypothesis draws the cases; the server is called for each below
    assert len(cases) >= 100
    for endpoint, field, value in cases:
        items = [_good(endpoint, subject_id, fake_clock) for _ in range(3)]
        items[1][field] = value
        raw = json.dumps({"items": items}, ensure_ascii=False)
        resp = await client.post(f"/api/v1/{endpoint}", data=raw, headers=headers)
        text = await resp.text()
        assert resp.status < 500, (endpoint, field, value, text)
        assert resp.status in (200, 207), (endpoint, field, value, text)
        results = json.loads(text)["results"]
        assert [r["status"] for r in (results[0], results[2])] == ["accepted", "accepted"], results


async def test_fuzzed_workflow_bodies_are_4xx(
    make_client: AppFactory, fake_clock: FakeClock
) -> None:
    client = await make_client(demo=True)
    alarm = await raise_alarm(client)
    csrf = await login(client, "street1")
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    good = {"action": "note", "version": alarm["version"], "note": "ok"}

    @FUZZ
    @given(
        field=st.sampled_from(["action", "version", "note", "disposition", "items", "extra"]),
        value=VALUES,
        bulk=st.booleans(),
    )
    def collect(field: str, value: Any, bulk: bool) -> None:
        cases.append((field, value, bulk))

    cases: list[tuple[str, Any, bool]] = []
    collect()
    assert len(cases) >= 100
    for field, value, bulk in cases:
        if bulk:
            body: dict[str, Any] = {
                "action": "note",
                "note": "ok",
                "items": [{"id": alarm["id"], "version": 1}],
            }
            url = "/api/v1/alarms/actions"
        else:
            body, url = dict(good), f"/api/v1/alarms/{alarm['id']}/actions"
        body[field] = value
        resp = await client.post(url, data=json.dumps(body, ensure_ascii=False), headers=headers)
        assert resp.status < 500, (url, field, value, await resp.text())
