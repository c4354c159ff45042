"""The daily report against a hand-computed fixture (see the numbers in the comments)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from alerts.models import ALARMS, Checkin
from tests.alerts.workflow_support import browser, street_of, subject_in
from tests.conftest import AppFactory, login
from web import keys

FUTIAN = "440304"


def T(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def _other_district_subject(client: TestClient) -> Any:
    tree = client.app[keys.TREE]
    other = next(d for d in tree.by_level("district") if d.id != FUTIAN)
    street = tree.descendants(other.id, level="street")[0]
    return await subject_in(client, street)


async def _fixture(client: TestClient) -> None:
    f1 = await subject_in(client, street_of(client, "street1"))
    f2 = await subject_in(client, street_of(client, "street2"))
    b = await _other_district_subject(client)
    n = 0

    def alarm(subject: Any, kind: str, created: datetime, **extra: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        row = {
            "kind": kind,
            "severity": "high",
            "state": "new",
            "suppressed": False,
            "subject_id": subject.id,
            "level": subject.level,
            "street_id": subject.street_id,
            "district_id": subject.district_id,
            "version": 1,
            "count": 1,
            "first_seen": created,
            "last_seen": created,
            "dedup_key": f"fx{n}",
            "open_key": None,
            "window_start": None,
            "window_end": None,
            "checkin_event_id": None,
            "details": "{}",
            "created_at": created,
            "updated_at": created,
            "closed_at": None,
            "owner_level": "street",
            "loop_breached": False,
            "escalations": 0,
            "acknowledged_at": None,
            "resolved_at": None,
        }
        row.update(extra)
        return row

    rows = [
        # Futian. The report day is 2026-11-24 in Asia/Shanghai = [11-23 16:00Z, 11-24 16:00Z)
        alarm(
            f2,
            "no_checkin",
            T(24, 1),
            acknowledged_at=T(24, 1, 5),  # ack 300 s
            resolved_at=T(24, 3),
            window_start=T(23, 20),
        ),  # disposal 7200 s, in loop
        alarm(
            f1,
            "sos",
            T(24, 2),
            acknowledged_at=T(24, 2, 15),  # ack 900 s
            resolved_at=T(24, 2) + timedelta(hours=30),
            loop_breached=True,
        ),  # 108000 s
        alarm(
            f1,
            "no_checkin",
            T(24, 3),
            acknowledged_at=T(24, 3, 10),  # ack 600 s
            loop_breached=True,
            window_start=T(23, 14),
        ),  # window on the day before
        alarm(f1, "tamper", T(23, 15, 59)),  # 23:59 local on 11-23: not this day
        alarm(
            f1, "no_checkin", T(24, 4), suppressed=True, state="suppressed", window_start=T(24, 3)
        ),  # suppressed: not counted anywhere
        # Another district
        alarm(
            b,
            "out_of_bounds",
            T(24, 5),
            acknowledged_at=T(24, 5, 1),  # ack 60 s
            resolved_at=T(24, 6),
        ),  # disposal 3600 s, in loop
        alarm(b, "no_checkin", T(24, 15, 59), window_start=T(24, 15)),  # 23:59 local: counted
    ]
    checkins = [
        (f1, "c1", T(24, 0, 10), T(24, 0), False),
        (f1, "c2", T(24, 0, 20), T(24, 0), False),  # same window again: counts once
        (f1, "c3", T(24, 11), T(24, 10), True),  # late: not on time
        (b, "c4", T(24, 0, 5), T(24, 0), False),
    ]
    async with client.app[keys.SESSIONMAKER]() as session:
        await session.execute(insert(ALARMS), rows)
        await session.execute(
            insert(Checkin),
            [
                {
                    "event_id": ev,
                    "subject_id": s.id,
                    "at": at,
                    "source": "app",
                    "lat": None,
                    "lon": None,
                    "accuracy_m": None,
                    "face_verified": True,
                    "window_start": ws,
                    "late": late,
                    "on_leave": False,
                    "received_at": at,
                    "credential_id": "",
                }
                for s, ev, at, ws, late in checkins
            ],
        )
        await session.commit()


CITY_TOTALS = {
    "alarms": 5,
    "ack": {"count": 4, "median_s": 450.0, "p90_s": 900.0},  # 60 300 | 600 900
    "disposal": {"count": 3, "median_s": 7200.0, "p90_s": 108000.0},  # 3600 7200 108000
    "closed_loop": {"within_loop": 2, "rate": 0.4},
    "loop_breached": 2,
    "checkins": {"due": 4, "done": 2, "rate": 0.5},  # done: f1@00, b@00; missed: f2, b
}
FUTIAN_FIGURES = {
    "alarms": 3,
    "ack": {"count": 3, "median_s": 600.0, "p90_s": 900.0},
    "disposal": {"count": 2, "median_s": 57600.0, "p90_s": 108000.0},
    "closed_loop": {"within_loop": 1, "rate": 0.3333},
    "loop_breached": 2,
    "checkins": {"due": 2, "done": 1, "rate": 0.5},
}


def _strip(f: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in f.items() if k not in ("by_kind", "id", "name", "states")}


async def test_daily_report_matches_the_hand_computed_fixture(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client(demo=True, database_url=database_url)
    await _fixture(client)
    await login(client, "duty1")
    resp = await client.get("/api/v1/reports/daily?date=2026-11-24")
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["scope"] == {"id": "4403", "name": "深圳市", "level": "city"}
    assert _strip(report["totals"]) == CITY_TOTALS
    kinds = {k: v for k, v in report["totals"]["by_kind"].items() if v}
    assert kinds == {"no_checkin": 3, "sos": 1, "out_of_bounds": 1}
    futian = next(d for d in report["by_district"] if d["id"] == FUTIAN)
    assert _strip(futian) == FUTIAN_FIGURES
    # the same figures for the district alone, and through a one-day range
    resp = await client.get(f"/api/v1/reports/daily?date=2026-11-24&district={FUTIAN}")
    assert _strip((await resp.json())["totals"]) == FUTIAN_FIGURES
    resp = await client.get("/api/v1/reports/range?from=2026-11-24&to=2026-11-24")
    assert _strip((await resp.json())["totals"]) == CITY_TOTALS
    resp = await client.get("/api/v1/reports/range?from=2026-11-23&to=2026-11-24")
    assert (await resp.json())["totals"]["alarms"] == 6  # plus the tamper on 11-23
    # CSV
    resp = await client.get("/api/v1/reports/daily.csv?date=2026-11-24")
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    city, fut = rows[0], next(r for r in rows if r["scope_id"] == FUTIAN)
    assert (city["alarms"], city["ack_median_min"], city["ack_p90_min"]) == ("5", "7.5", "15.0")
    assert (city["disposal_median_min"], city["disposal_p90_min"]) == ("120.0", "1800.0")
    assert (city["closed_loop_rate"], city["checkin_rate"], city["kind_no_checkin"]) == (
        "0.4000",
        "0.5000",
        "3",
    )
    assert (fut["alarms"], fut["disposal_median_min"], fut["closed_loop_rate"]) == (
        "3",
        "960.0",
        "0.3333",
    )
    # the same file with column names for people, in the page's language; rows unchanged
    resp = await client.get("/api/v1/reports/daily.csv?date=2026-11-24&header=labels")
    labelled = list(csv.reader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert labelled[0][:5] == ["起始日期", "截止日期", "辖区代码", "辖区", "报警数"]
    assert "未签到" in labelled[0] and len(labelled[0]) == len(rows[0])
    assert [r[4] for r in labelled[1:]] == [r["alarms"] for r in rows]
    resp = await client.get("/api/v1/reports/daily.csv?date=2026-11-24&header=pretty")
    assert resp.status == 422
    # printable page
    resp = await client.get("/reports?date=2026-11-24")
    html = await resp.text()
    assert resp.status == 200 and "7.5" in html and "40.0%" in html and "福田区" in html


async def test_report_scope_and_bad_input(demo_client: TestClient) -> None:
    await login(demo_client, "futian")
    resp = await demo_client.get("/api/v1/reports/daily?date=2026-11-24")
    assert (await resp.json())["scope"]["id"] == FUTIAN
    resp = await demo_client.get("/api/v1/reports/daily?date=2026-11-24&district=440303")
    assert resp.status == 404
    resp = await demo_client.get("/api/v1/reports/daily?date=24.11.2026")
    assert resp.status == 422
    resp = await demo_client.get("/api/v1/reports/range?from=2026-11-24&to=2026-11-01")
    assert resp.status == 422
    async with browser(demo_client, "street2") as (street, _):
        resp = await street.get(f"/api/v1/reports/daily?district={FUTIAN}")
        assert resp.status == 404
        resp = await street.get("/api/v1/reports/daily")
        assert (await resp.json())["scope"]["level"] == "street"
