#!/usr/bin/env python3
"""Alarm storm: 100,000 subjects whose window closes at the same minute, 6% without a check-in.

Measures the time from the deadline (the fake clock reaching it) to the last of the
``alarm.raised`` events on the bus — every alarm is committed before it is published — with
the real watcher, the real database (SQLite file or a fresh PostgreSQL database) and the
in-process bus. The 94% who checked in did so through the database *and* the in-memory
flags, as ingestion leaves them. A full run also loads 1,000,000 subjects into the watcher
in a separate process and reports its resident memory.

    python bench/alarm_storm.py [--db sqlite|postgresql] [--quick]

Prints one JSON line last: subjects, alarms, deadline_to_last_alarm_s, db, watcher_rss_mb_1m.
Targets: ≤ 1 s on SQLite, ≤ 2 s on PostgreSQL, ≤ 600 MB for a million subjects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from alerts.engine import AlertEngine
from alerts.models import Checkin
from center.bus import BusMessage
from center.bus_local import LocalBus
from center.clock import FakeClock
from center.db import create_engine, create_sessionmaker
from center.jurisdictions import JurisdictionTree
from center.migrate import migrate
from center.models import Jurisdiction, Subject
from config.settings import load_settings

PG_ADMIN = os.environ.get(
    "CENTER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MISSING = 0.06
# 07:55 in Shanghai on the fake clock's day; the window is 08:00-09:00 (+10 min grace).
START = datetime(2026, 11, 24, 23, 55, tzinfo=UTC)
WINDOW_START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 11, 25, 1, 10, tzinfo=UTC)


async def _pg_database() -> str:
    import asyncpg

    name = f"center_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN.replace("+asyncpg", ""))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def _drop_pg(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN.replace("+asyncpg", ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _seed(sessionmaker: Any, n: int) -> None:
    districts = [f"4403{d:02d}" for d in range(10)]
    streets = [(f"{d}{s:03d}", d) for d in districts for s in range(10)]
    rows: list[dict[str, Any]] = [
        {"id": "4403", "parent_id": None, "level": "city", "name": "city", "sort": 0}
    ]
    rows += [
        {"id": d, "parent_id": "4403", "level": "district", "name": d, "sort": 0} for d in districts
    ]
    rows += [{"id": s, "parent_id": d, "level": "street", "name": s, "sort": 0} for s, d in streets]
    async with sessionmaker() as session:
        await session.execute(insert(Jurisdiction), rows)
        subjects = []
        for i in range(n):
            street, district = streets[i % len(streets)]
            subjects.append(
                {
                    "id": f"S{i:07d}",
                    "name": f"对象{i}",
                    "gender": "",
                    "id_number": "",
                    "phone": "",
                    "level": "normal",
                    "street_id": street,
                    "district_id": district,
                    "active": True,
                    "created_at": START,
                }
            )
        for k in range(0, n, 10_000):
            await session.execute(insert(Subject), subjects[k : k + 10_000])
        await session.commit()


async def run_storm(db: str, n: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="storm-")
    url = f"sqlite+aiosqlite:///{tmp}/center.db" if db == "sqlite" else await _pg_database()
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessionmaker = create_sessionmaker(engine)
        await _seed(sessionmaker, n)
        settings = load_settings(
            env={},
            overrides={
                "data_dir": tmp,
                "checkin_plan_normal": "daily 08:00-09:00",
                "checkin_grace_s": 600,
            },
        )
        clock = FakeClock(START)
        bus = LocalBus()
        await bus.start()
        async with sessionmaker() as session:
            tree = await JurisdictionTree.load(session)
        alerts = AlertEngine(settings, clock=clock, sessionmaker=sessionmaker, bus=bus, tree=tree)
        await alerts.start()
        task = asyncio.create_task(alerts.watcher.run())
        await clock.set(WINDOW_START + timedelta(minutes=30))
        rng = random.Random(4)
        checked = [i for i in range(n) if rng.random() >= MISSING]
        rows = [
            {
                "event_id": f"e{i}",
                "subject_id": f"S{i:07d}",
                "at": WINDOW_START + timedelta(seconds=rng.randrange(1800)),
                "source": "app",
                "window_start": WINDOW_START,
                "late": False,
                "on_leave": False,
                "received_at": clock.now(),
                "credential_id": "bench",
            }
            for i in checked
        ]
        async with sessionmaker() as session:
            for k in range(0, len(rows), 10_000):
                await session.execute(insert(Checkin), rows[k : k + 10_000])
            await session.commit()
        ws = WINDOW_START.timestamp()
        for i in checked:
            alerts.watcher.note_checkin(alerts.directory.index[f"S{i:07d}"], ws)
        expected = n - len(checked)
        last = [0.0]
        raised = [0]

        def on_alarm(msg: BusMessage) -> None:
            if msg.type == "alarm.raised":
                raised[0] += 1
                last[0] = time.perf_counter()

        bus.subscribe("alarms", on_alarm)
        await asyncio.wait_for(alerts.watcher.wait_processed(clock.now()), 60)
        t0 = time.perf_counter()
        await clock.set(DEADLINE)
        await asyncio.wait_for(alerts.watcher.wait_processed(DEADLINE), 120)
        if raised[0] != expected:
            raise SystemExit(f"expected {expected} alarms, the bus saw {raised[0]}")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()
        return {
            "subjects": n,
            "alarms": raised[0],
            "deadline_to_last_alarm_s": round(last[0] - t0, 3),
            "db": db,
        }
    finally:
        await engine.dispose()
        if db == "postgresql":
            await _drop_pg(url)


def rss_child(n: int) -> None:
    """In a fresh process: load ``n`` subjects into the watcher's structures, print RSS MB."""
    import psutil

    from alerts.directory import SubjectDirectory
    from alerts.plans import PlanBook, plan_settings

    settings = load_settings(env={}, overrides={"data_dir": tempfile.gettempdir()})
    directory = SubjectDirectory(PlanBook(plan_settings(settings)))
    levels = ("strict", "normal", "lenient")
    directory.add_rows(
        (f"S{i:07d}", f"对象{i}", levels[i % 3], f"440304{i % 100:03d}", "440304", True)
        for i in range(n)
    )
    print(round(psutil.Process().memory_info().rss / 2**20, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="20,000 subjects, no 1M memory run")
    parser.add_argument("--subjects", type=int, default=0)
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    n = args.subjects or (20_000 if args.quick else 100_000)
    result = asyncio.run(run_storm(args.db, n))
    rss: float | None = None
    if not args.quick:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", "1000000"],
            capture_output=True,
            text=True,
            check=True,
        )
        rss = float(out.stdout.strip().splitlines()[-1])
    result["watcher_rss_mb_1m"] = rss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
