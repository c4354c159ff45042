#!/usr/bin/env python3
"""Face verification: milliseconds per match on one core, and the alarm path under a burst.

Part 1 reads photos made from ``skimage.data.astronaut()`` (crop, darkened, mirror, scaled)
in this process pinned to one core — detection, alignment, embedding and the comparison
with a five-photo baseline — and reports ms per match and matches per second.

Part 2 runs the real server (SQLite, demo city) with one face worker. It measures the
round trip of an SOS device event (the alarm path: the alarm is committed before the
answer) first on an idle server — the baseline measured in the same run — and then while a
burst of check-ins with photos (1,000; 40 with ``--quick``) is posted and decided.

    python bench/face.py [--quick]

Prints one JSON line last: ms_per_match, matches_per_s, photos, burst_s, sos_p50_ms_idle,
sos_p95_ms_idle, sos_p50_ms_burst, sos_p95_ms_burst, refused_429, lost.
Targets: ≤ 300 ms per match on one core; the SOS latency during the burst within noise of
the idle one; lost = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from aiohttp.test_utils import TestClient, TestServer

from alerts.faces import FaceModels, encode_jpeg, verdict


def _photos() -> list[bytes]:
    from skimage import data
    from skimage.transform import resize

    img = np.ascontiguousarray(data.astronaut())
    small = (resize(img, (420, 420), anti_aliasing=True) * 255).astype(np.uint8)
    variants = [
        img,
        np.ascontiguousarray(img[5:305, 83:303]),
        (img * 0.6).astype(np.uint8),
        np.ascontiguousarray(img[:, ::-1]),
        small,
    ]
    return [encode_jpeg(v) for v in variants]


def per_match(photos: list[bytes], rounds: int) -> float:
    """Milliseconds per photo read and compared, on one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    models = FaceModels()
    baseline = [r.embedding for r in map(models.read_jpeg, photos) if r.embedding]
    start = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for p in photos:
            v = verdict(models.read_jpeg(p), baseline, 0.6)
            assert v is not None and v.outcome == "match"
            n += 1
    return (time.perf_counter() - start) * 1000 / n


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


async def burst(photos: list[bytes], count: int, sos: int) -> dict[str, Any]:
    from config.settings import load_settings
    from web import keys
    from web.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            env={},
            overrides={
                "data_dir": tmp,
                "port": 0,
                "demo": True,
                "simulator": False,
                "ingest_rate_per_s": 100000.0,
                "face_workers": 1,
                "face_queue_max": 2000,
                "log_level": "WARNING",
            },
        )
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            return await _burst(client, keys, photos, count, sos)
        finally:
            await client.close()


async def _burst(
    client: TestClient, keys: Any, photos: list[bytes], count: int, sos: int
) -> dict[str, Any]:
    app = client.app
    demo = app[keys.DEMO]
    headers = {"Authorization": f"Bearer {demo['integration_key']}"}
    sid = str(demo["users"]["subject1"]["subject_id"])
    baselines = app[keys.FACE_BASELINES]
    async with app[keys.SESSIONMAKER]() as session:
        from alerts.face_baseline import photo_of
        from alerts.face_models import BaselineSource, BaselineState

        reading = await baselines.read(photos[0])
        assert reading.embedding is not None
        photo = photo_of(photos[0])
        path = await baselines.store_file(sid, photo)
        await baselines.insert(
            session,
            "bench",
            sid,
            photo,
            path,
            reading.embedding,
            source=BaselineSource.UPLOAD,
            state=BaselineState.APPROVED,
        )
        await session.commit()
    now = datetime.now(UTC)
    seq = iter(range(10**9))

    async def one_sos() -> float:
        body = {
            "event_id": f"sos-{next(seq)}",
            "subject_id": sid,
            "device_id": "bench-phone",
            "kind": "sos",
            "at": (now - timedelta(seconds=1)).isoformat(),
        }
        start = time.perf_counter()
        resp = await client.post("/api/v1/device-events", json=body, headers=headers)
        assert resp.status in (200, 201), await resp.text()
        return (time.perf_counter() - start) * 1000

    idle = [await one_sos() for _ in range(sos)]
    b64 = [base64.b64encode(p).decode() for p in photos]
    refused = 0
    sent: list[str] = []

    async def post_photos() -> None:
        nonlocal refused
        i = 0
        while i < count:
            items = []
            for _ in range(min(8, count - i)):
                eid = f"face-{i}"
                items.append(
                    {
                        "event_id": eid,
                        "subject_id": sid,
                        "at": (now - timedelta(seconds=5)).isoformat(),
                        "source": "app",
                        "photo_jpeg_b64": b64[i % len(b64)],
                    }
                )
                i += 1
            while True:
                resp = await client.post("/api/v1/checkins", json={"items": items}, headers=headers)
                if resp.status != 429:
                    assert resp.status == 200, await resp.text()
                    sent.extend(x["event_id"] for x in items)
                    break
                refused += 1
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))

    start = time.perf_counter()
    poster = asyncio.create_task(post_photos())
    during: list[float] = []
    verifier = app[keys.FACE_VERIFIER]
    while not poster.done() or verifier.pool.queued:
        during.append(await one_sos())
        await asyncio.sleep(0.05)
    await poster
    await verifier.idle()
    burst_s = time.perf_counter() - start
    from sqlalchemy import func, select

    from alerts.face_models import PENDING, FaceCheck

    async with app[keys.SESSIONMAKER]() as session:
        decided = await session.scalar(
            select(func.count()).select_from(FaceCheck).where(FaceCheck.outcome != PENDING)
        )
    return {
        "photos": count,
        "burst_s": round(burst_s, 2),
        "sos_p50_ms_idle": _pct(idle, 0.5),
        "sos_p95_ms_idle": _pct(idle, 0.95),
        "sos_p50_ms_burst": _pct(during, 0.5),
        "sos_p95_ms_burst": _pct(during, 0.95),
        "sos_samples_burst": len(during),
        "refused_429": refused,
        "lost": count - int(decided or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (< 30 s)")
    args = parser.parse_args()
    photos = _photos()
    ms = per_match(photos, rounds=1 if args.quick else 10)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    out = {"ms_per_match": round(ms, 1), "matches_per_s": round(1000 / ms, 2)}
    print(f"one core: {ms:.1f} ms per match", file=sys.stderr)
    out.update(asyncio.run(burst(photos, 24 if args.quick else 1000, 8 if args.quick else 30)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
