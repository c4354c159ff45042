#!/usr/bin/env python3
"""Check-in ingestion throughput and latency against the framework's ceiling.

Starts the real server (``run.py --demo --no-simulator``, SQLite) and a bare aiohttp JSON
endpoint in separate processes, then drives both from this process over keep-alive
connections: single check-ins (one per request), batches of 500, and single requests to the
bare endpoint (parse JSON, answer JSON — what aiohttp alone costs on this machine).

    python bench/ingest.py [--quick] [--concurrency 32] [--seconds 10]

Prints one JSON line last: single_per_s, single_p99_ms, batch_per_s, bare_per_s,
single_vs_bare. Targets: ≥ 1,500 single/s, ≥ 10,000 batched/s, single_vs_bare ≥ 0.3.
The server's check-in windows are always open, so every check-in is on time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"status": "accepted", "event_id": body.get("event_id")})

    app = web.Application()
    app.router.add_post("/bare", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _wait_up(url: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up")


_seq = itertools.count()


def _checkin(subject: str, now: str) -> dict[str, Any]:
    return {
        "event_id": f"b{os.getpid()}-{next(_seq)}",
        "subject_id": subject,
        "at": now,
        "source": "app",
        "lat": 22.54,
        "lon": 114.05,
        "face_verified": True,
    }


async def _drive(
    url: str, headers: dict[str, str], make_body: Any, seconds: float, concurrency: int
) -> tuple[int, int, list[float]]:
    """Returns (requests, items, latencies in seconds)."""
    latencies: list[float] = []
    counts = [0, 0]
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as s:

        async def worker() -> None:
            while time.perf_counter() < stop:
                body, n = make_body()
                t = time.perf_counter()
                async with s.post(url, data=body) as r:
                    await r.read()
                    if r.status >= 300:
                        raise SystemExit(f"{url}: HTTP {r.status} {await r.text()}")
                latencies.append(time.perf_counter() - t)
                counts[0] += 1
                counts[1] += n

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts[0], counts[1], latencies


def _p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] * 1000


def _start_servers(tmp: str, port: int, bare_port: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "CENTER_INGEST_RATE_PER_S": "100000000",
        "CENTER_INGEST_BURST": "100000000",
        "CENTER_LOG_LEVEL": "WARNING",
        # Windows that are always open, so every check-in takes the on-time path whatever
        # the time of day (late ones also look for an alarm to mark).
        "CENTER_CHECKIN_GRACE_S": "0",
        **{
            f"CENTER_CHECKIN_PLAN_{level}": "daily 00:00-12:00; daily 12:00-24:00"
            for level in ("STRICT", "NORMAL", "LENIENT")
        },
    }
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "run.py"),
            "--demo",
            "--no-simulator",
            "--port",
            str(port),
            "--data-dir",
            tmp,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = subprocess.Popen([sys.executable, __file__, "--bare-server", str(bare_port)])
    return [server, bare]


async def run(
    tmp: str, port: int, bare_port: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    from config.demo_city import generate_subjects

    subjects = [s.key for s in generate_subjects()]
    await _wait_up(f"http://127.0.0.1:{port}/healthz")
    await _wait_up(f"http://127.0.0.1:{bare_port}/bare")
    creds = json.loads((Path(tmp) / "demo-credentials.json").read_text(encoding="utf-8"))
    headers = {
        "Authorization": f"Bearer {creds['integration_key']}",
        "Content-Type": "application/json",
    }
    now = datetime.now(UTC).isoformat()
    cycle = itertools.cycle(subjects)

    def single() -> tuple[bytes, int]:
        return json.dumps(_checkin(next(cycle), now)).encode(), 1

    def batch() -> tuple[bytes, int]:
        items = [_checkin(next(cycle), now) for _ in range(500)]
        return json.dumps({"items": items}).encode(), 500

    api = f"http://127.0.0.1:{port}/api/v1/checkins"
    await _drive(api, headers, single, 1.0, concurrency)  # warm-up
    n, _, lat = await _drive(api, headers, single, seconds, concurrency)
    single_per_s = n / seconds
    _, items, _ = await _drive(api, headers, batch, seconds, max(2, concurrency // 8))
    batch_per_s = items / seconds
    bare_url = f"http://127.0.0.1:{bare_port}/bare"
    await _drive(bare_url, headers, single, 1.0, concurrency)
    bn, _, _ = await _drive(bare_url, headers, single, seconds, concurrency)
    bare_per_s = bn / seconds
    return {
        "single_per_s": round(single_per_s),
        "single_p99_ms": round(_p99(lat), 1),
        "batch_per_s": round(batch_per_s),
        "bare_per_s": round(bare_per_s),
        "single_vs_bare": round(single_per_s / bare_per_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per phase instead of 10")
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bare-server", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    tmp = tempfile.mkdtemp(prefix="ingest-bench-")
    port, bare_port = _free_port(), _free_port()
    procs = _start_servers(tmp, port, bare_port)
    try:
        result = asyncio.run(run(tmp, port, bare_port, seconds, args.concurrency))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
