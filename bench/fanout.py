#!/usr/bin/env python3
"""Websocket fan-out benchmark: the hub against a bare aiohttp broadcast loop, same run.

    python bench/fanout.py [--quick] [--clients 1000] [--rate 10] [--seconds 20]

1. Starts the real center (``create_app``, demo city, in-process bus) in a server process
   with two bench-only control routes, and client processes holding N websocket clients in
   all (the ``websockets`` library) that authenticate as a wall and subscribe to ``alarms``.
   The server publishes ``rate`` alarm events a second on the bus; every client measures
   each event's delivery latency (receive time − the publish time in the event envelope).
   The driver samples the server process's CPU over the same window.
2. Does the same against a bare broadcast loop in the same server library (aiohttp): one
   handler, one loop that sends the same frame to every socket, no queues, no filtering.
3. Storm: 6,000 alarms raised within one second on the hub; a wall subscribed to
   ``dashboard`` counts the deltas it receives and checks that the final counts are exact.

Prints one JSON line last: ``clients, events_per_s, p50_ms, p99_ms, server_cpu_pct,
vs_bare, storm_wall_updates_per_s, storm_counts_exact`` plus the bare-loop figures.
``vs_bare`` is the smaller of two ratios — bare p99 / hub p99 and bare CPU / hub CPU — so
1.0 means "as cheap and as fast as the bare loop" and 0.5 "half as good on the worse of the
two". Latencies include the client processes' own queueing, equally in both runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STORM_ALARMS = 6000
STREETS = ("440304001", "440303001", "440305001", "440306001", "440311001", "440307009")


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alarm(n: int, sent_at: float) -> dict[str, Any]:
    street = STREETS[n % len(STREETS)]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(sent_at))
    return {
        "id": f"bench-{n}",
        "kind": "no_checkin",
        "severity": "high",
        "state": "new",
        "subject_id": f"S{n:06d}",
        "subject_name": "张三丰",
        "level": "strict",
        "street_id": street,
        "district_id": "440399" if street == "440307009" else street[:6],
        "version": 1,
        "count": 1,
        "first_seen": stamp,
        "last_seen": stamp,
        "suppressed": False,
    }


async def _paced(count: int, rate: float, emit: Callable[[int], Awaitable[None]]) -> None:
    """Call ``emit(i)`` ``count`` times at ``rate`` a second, on schedule."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        await emit(i)
        delay = start + (i + 1) / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


# -- server processes ------------------------------------------------------------------


def serve_hub(port: int, data_dir: str) -> None:
    from aiohttp import web

    from config.settings import load_settings
    from web import keys
    from web.app import create_app
    from web.policy import public

    settings = load_settings(
        env={},
        overrides={
            "data_dir": data_dir,
            "port": port,
            "demo": True,
            "simulator": False,
            "alarm_catchup_h": 0,
            "log_level": "WARNING",
        },
    )
    app = create_app(settings)
    tasks: set[asyncio.Task[None]] = set()

    @public
    async def fanout(request: web.Request) -> web.Response:
        body = await request.json()
        bus = request.app[keys.BUS]

        async def emit(i: int) -> None:
            await bus.publish("alarms", "alarm.raised", _alarm(i, time.time()))

        task = asyncio.create_task(_paced(body["count"], body["rate"], emit))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    @public
    async def storm(request: web.Request) -> web.Response:
        body = await request.json()
        bus = request.app[keys.BUS]
        count, batches = int(body["count"]), 20

        async def emit(b: int) -> None:
            for i in range(count // batches):
                n = 1_000_000 + b * (count // batches) + i
                await bus.publish("alarms", "alarm.raised", _alarm(n, time.time()))

        await _paced(batches, batches / float(body.get("seconds", 1.0)), emit)
        return web.json_response({"ok": True})

    app.router.add_post("/bench/fanout", fanout)
    app.router.add_post("/bench/storm", storm)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: None, access_log=None)


def serve_bare(port: int) -> None:
    from aiohttp import web

    clients: dict[web.WebSocketResponse, int] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        # The hub's defaults (ws_max_frame_bytes, ws_heartbeat_s, ws_compress off).
        ws = web.WebSocketResponse(max_msg_size=65536, heartbeat=20, compress=False)
        await ws.prepare(request)
        auth = await ws.receive_json()
        await ws.send_json({"id": auth["id"], "type": "result", "success": True, "result": {}})
        sub = await ws.receive_json()
        await ws.send_json(
            {
                "id": sub["id"],
                "type": "result",
                "success": True,
                "result": {"epoch": "bare", "seq": 0, "recovered": False, "snapshot": {}},
            }
        )
        clients[ws] = sub["id"]
        try:
            async for _ in ws:
                pass
        finally:
            clients.pop(ws, None)
        return ws

    async def fanout(request: web.Request) -> web.Response:
        body = await request.json()

        async def emit(i: int) -> None:
            now = time.time()
            event = {"type": "alarm.raised", "seq": i + 1, "data": _alarm(i, now), "at": now}
            encoded = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            for ws, sub_id in list(clients.items()):
                await ws.send_str(f'{{"id":{sub_id},"type":"event","event":{encoded}}}')

        task = asyncio.create_task(_paced(body["count"], body["rate"], emit))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/bench/fanout", fanout)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: None, access_log=None)


# -- a client process ------------------------------------------------------------------


async def run_clients(
    url: str, token: str, n: int, final_id: str, limit_s: float
) -> dict[str, Any]:
    """``n`` clients; each records ``receive time - event["at"]`` (the publish time) until
    the event with ``final_id``. The wall's masked view keeps ``id`` but no extra fields, so
    the publish time travels in the event envelope, as it does for every client."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    final_marker = f'"id":"{final_id}"'
    ready = 0
    finished = 0
    done = asyncio.Event()

    async def one() -> None:
        nonlocal ready, finished
        async with connect(url, max_size=2**22, open_timeout=60, ping_interval=None) as ws:
            await ws.send(json.dumps({"id": 1, "type": "auth", "token": token}))
            json.loads(await ws.recv())
            await ws.send(json.dumps({"id": 2, "type": "subscribe", "topic": "alarms"}))
            json.loads(await ws.recv())
            ready += 1
            if ready == n:
                print("READY", flush=True)
            async for raw in ws:
                now = time.time()
                # The cheapest read of the publish time (the envelope's last field), so the
                # clients measure the server rather than their own JSON parsing.
                text = raw if isinstance(raw, str) else raw.decode()
                at = text.rfind('"at":')
                if at < 0 or '"type":"event"' not in text[:40]:
                    continue
                end = at + 5
                while end < len(text) and text[end] not in ",}":
                    end += 1
                latencies.append((now - float(text[at + 5 : end])) * 1000)
                if final_marker in text:
                    break
        finished += 1
        if finished == n:
            done.set()

    tasks = []
    for i in range(0, n, 50):
        tasks.extend(asyncio.create_task(one()) for _ in range(min(50, n - i)))
        await asyncio.sleep(0.05)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), limit_s)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"samples": len(latencies), "latencies": latencies, "finished": finished}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


# -- the driver ------------------------------------------------------------------------


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def _post(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )


def measure(base: str, token: str, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    import psutil

    count = int(args.rate * args.seconds)
    share = [args.clients // args.client_procs] * args.client_procs
    share[0] += args.clients - sum(share)
    procs = [
        _spawn(
            "--client",
            "--url",
            base.replace("http", "ws") + "/ws",
            "--token",
            token,
            "--clients",
            str(n),
            "--timeout",
            str(args.seconds + 60),
            "--final-id",
            f"bench-{count - 1}",
        )
        for n in share
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "READY" not in line:
            raise RuntimeError(f"clients failed: {line}{proc.communicate()[1][-2000:]}")
    server = psutil.Process(server_pid)
    cpu0, t0 = server.cpu_times(), time.monotonic()
    _post(f"{base}/bench/fanout", {"count": count, "rate": args.rate})
    outputs = [proc.communicate(timeout=args.seconds + 120)[0] for proc in procs]
    cpu1, t1 = server.cpu_times(), time.monotonic()
    lat: list[float] = []
    for out in outputs:
        lat.extend(json.loads(out.strip().splitlines()[-1])["latencies"])
    lat.sort()
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "p50_ms": round(_pct(lat, 0.50), 2),
        "p99_ms": round(_pct(lat, 0.99), 2),
        "cpu_pct": round(100 * busy / (t1 - t0), 1),
        "delivered": len(lat),
        "expected": count * args.clients,
    }


async def storm(base: str, token: str) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with connect(base.replace("http", "ws") + "/ws", max_size=2**24) as ws:
        await ws.send(json.dumps({"id": 1, "type": "auth", "token": token}))
        json.loads(await ws.recv())
        await ws.send(json.dumps({"id": 2, "type": "subscribe", "topic": "dashboard"}))
        alarms = json.loads(await ws.recv())["result"]["snapshot"]["alarms"]
        target = alarms["open"] + STORM_ALARMS
        loop = asyncio.get_running_loop()
        post = loop.run_in_executor(
            None, _post, f"{base}/bench/storm", {"count": STORM_ALARMS, "seconds": 1.0}
        )
        stamps: list[float] = []
        while alarms["open"] < target:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if msg.get("type") == "event":
                stamps.append(time.monotonic())
                alarms = msg["event"]["data"].get("alarms", alarms)
        await post
        # the most deltas seen in any one-second window
        worst = max(sum(1 for s in stamps if t <= s < t + 1.0) for t in stamps) if stamps else 0
        exact = alarms["open"] == target and sum(alarms["by_district"].values()) == target
        return {"storm_wall_updates_per_s": worst, "storm_counts_exact": exact}


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="under 30 s, same keys")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--client-procs", type=int, default=1, help="processes for the clients")
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time per run")
    parser.add_argument("--serve", choices=["hub", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=120, help=argparse.SUPPRESS)
    parser.add_argument("--final-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _raise_fd_limit()
    if args.serve == "hub":
        serve_hub(args.port, args.data_dir)
        return 0
    if args.serve == "bare":
        serve_bare(args.port)
        return 0
    if args.client:
        result = asyncio.run(
            run_clients(args.url, args.token, args.clients, args.final_id, args.timeout)
        )
        print(json.dumps(result))
        return 0
    if args.quick:
        args.seconds = min(args.seconds, 5.0)

    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        hub_port, bare_port = _free_port(), _free_port()
        hub = _spawn("--serve", "hub", "--port", str(hub_port), "--data-dir", tmp)
        bare = _spawn("--serve", "bare", "--port", str(bare_port))
        try:
            hub_base, bare_base = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{bare_port}"
            _wait_ready(f"{hub_base}/readyz")
            _wait_ready(f"{bare_base}/readyz")
            token = json.loads((Path(tmp) / "demo-credentials.json").read_text())["wall_token"]
            hub_stats = measure(hub_base, token, args, hub.pid)
            bare_stats = measure(bare_base, token, args, bare.pid)
            storm_stats = asyncio.run(storm(hub_base, token))
        finally:
            _stop([hub, bare])
    vs_latency = bare_stats["p99_ms"] / hub_stats["p99_ms"] if hub_stats["p99_ms"] else 0.0
    vs_cpu = bare_stats["cpu_pct"] / hub_stats["cpu_pct"] if hub_stats["cpu_pct"] else 0.0
    print(
        json.dumps(
            {
                "clients": args.clients,
                "events_per_s": args.rate,
                "p50_ms": hub_stats["p50_ms"],
                "p99_ms": hub_stats["p99_ms"],
                "server_cpu_pct": hub_stats["cpu_pct"],
                "vs_bare": round(min(vs_latency, vs_cpu), 3),
                "vs_bare_latency": round(vs_latency, 3),
                "vs_bare_cpu": round(vs_cpu, 3),
                "bare_p50_ms": bare_stats["p50_ms"],
                "bare_p99_ms": bare_stats["p99_ms"],
                "bare_cpu_pct": bare_stats["cpu_pct"],
                "delivered": hub_stats["delivered"],
                "expected": hub_stats["expected"],
                "bare_delivered": bare_stats["delivered"],
                **storm_stats,
                "seconds": args.seconds,
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
