#!/usr/bin/env python3
"""Visits benchmark: server CPU per live, monitored, recorded family visit, and the most such
visits one center process holds with every viewer at >= 25 fps.

    python bench/visits.py [--quick]

1. Baseline (same run): the media core alone (``bench/media.py``'s server: a
   :class:`media.manager.RoomManager` behind a JSON-lines socket) carries the same rooms —
   two parties and a monitor, recorded — and its process CPU per room is measured.
2. The real center (``create_app``, demo city, SQLite, in-process bus) in its own process,
   with one bench-only route that adds prison terminals (device tokens), inmates and
   approved relatives to the demo's first prison. For each visit the driver goes the way
   people do: visit staff book it (``POST /api/v1/visits``, lead time 0) and approve it
   (join code), the relative exchanges the code (``POST /api/v1/visits/join``) and joins
   the room over ``/ws`` with the guest session, the prison terminal joins with its device
   token, a staff member opens it on the monitor, and staff admit it (``/admit``): the
   visit is live, monitored and recorded. Visits are added in steps; at each step the
   server process's CPU and every viewer's received frame rate (relative ← terminal,
   terminal ← relative, monitor ← both) are measured over the same window.

The peers are cheap so the server is what is measured: each publisher replays a
pre-encoded 640x480@30 VP8/Opus file as packets (``MediaPlayer(decode=False)``), receivers
tap the RTP stream without decoding (the first frames of each are decoded to check them).

Keys (CPU in % of one core of the server process):

* ``cpu_pct_per_visit``: (center CPU with N visits − idle center CPU) / N, at the largest N
  that held (target <= 3);
* ``visits_per_process``: the largest N at which every viewer received >= 25 fps;
* ``media_core_cpu_pct_per_room``: the same per room for the media core alone;
* ``visit_vs_media_core``: ``cpu_pct_per_visit`` / ``media_core_cpu_pct_per_room`` (1.0:
  the visit machinery — signaling, guest sessions, timers, quality sampling — costs nothing
  beyond the media it carries);
* ``idle_cpu_pct``, ``min_fps``, ``steps`` (CPU and min fps per N), ``quick``, ``cpus``,
  ``loadavg_1m``.

On a 2-core machine the peers share the cores with the server: ``visits_per_process`` is
the machine's ceiling with the peers on it, the CPU figures are the server's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
from aiortc import RTCSessionDescription  # noqa: E402
from aiortc.contrib.media import MediaPlayer  # noqa: E402

from bench.media import (  # noqa: E402
    BenchRoom,
    Peer,
    ServerProcess,
    ensure_media_file,
    measure,
    open_room,
)
from tests.web.ws.rtc_peer import WsSignal  # noqa: E402

_LOGGER = logging.getLogger("bench.visits")

MIN_FPS = 25.0
TARGET_CPU_PCT = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The center's process ---------------------------------------------------------------------


def serve_center(port: int, data_dir: str) -> None:
    """The real center with one bench-only route, ``POST /bench/seed {"count"}``: that many
    more terminals, inmates and approved relatives in the demo's first prison."""
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
            "visit_lead_working_days": 0,
        },
    )
    app = create_app(settings)

    @public
    async def seed(request: web.Request) -> web.Response:
        body = await request.json()
        async with request.app[keys.SESSIONMAKER]() as session:
            out = await seed_parties(session, request.app[keys.CLOCK].now(), int(body["count"]))
            await session.commit()
        return web.json_response(out)

    app.router.add_post("/bench/seed", seed)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: None, access_log=None)


async def seed_parties(session: Any, now: datetime, count: int) -> list[dict[str, Any]]:
    """Terminals with device tokens, inmates and one approved relative each, beside the
    demo's records (the demo prison's own terminal stays booked for the demo visit)."""
    from center.identity import create_credential, sha256_hex
    from center.models import Credential, CredentialKind, Role
    from center.visits.demo import PRISON_A, TERMINAL_A
    from center.visits.models import Inmate, PrisonTerminal, Relative, RelativeStatus

    demo_terminal = await session.get(PrisonTerminal, TERMINAL_A)
    jurisdiction = (await session.get(Credential, demo_terminal.credential_id)).jurisdiction_id
    out = []
    for i in range(count):
        cred, token = await create_credential(
            session,
            kind=CredentialKind.DEVICE_TOKEN,
            name=f"bench-terminal-{i}",
            jurisdiction_id=jurisdiction,
            actor="system:bench",
            now=now,
        )
        cred.role = str(Role.VISIT_STAFF)
        session.add(
            PrisonTerminal(
                id=f"bench-t{i}", prison_id=PRISON_A, name=f"终端{i}", credential_id=cred.id
            )
        )
        session.add(Inmate(id=f"bench-inmate-{i}", prison_id=PRISON_A, name=f"服刑人员{i}"))
        await session.flush()
        id_number = f"44030419700101{i:04d}"
        relative = Relative(
            inmate_id=f"bench-inmate-{i}",
            name=f"亲属{i}",
            relationship="母亲",
            id_number_hash=sha256_hex(id_number),
            id_last4=id_number[-4:],
            phone=f"1700901{i:04d}",
            status=RelativeStatus.APPROVED,
            banned_until=None,
        )
        session.add(relative)
        await session.flush()
        out.append(
            {"terminal_token": token, "inmate_id": f"bench-inmate-{i}", "relative_id": relative.id}
        )
    return out


# Peers over the center's signaling ------------------------------------------------------


class WsBenchPeer(Peer):
    """``bench/media.py``'s cheap peer, joined through ``/ws`` (rtc.join, rtc.offer) and
    answering any offer the server sends later, in order, like a browser."""

    def __init__(self, send: MediaPlayer | None, recv_pairs: int) -> None:
        super().__init__(send, recv_pairs)
        self.signal: WsSignal | None = None
        self._lock = asyncio.Lock()

    async def join_ws(
        self, http: aiohttp.ClientSession, base: str, token: str, room: str, role: str
    ) -> None:
        self.signal = WsSignal(await http.ws_connect(f"{base}/ws"))
        reply = await self.signal.call("auth", token=token)
        if not reply["success"]:
            raise RuntimeError(f"auth refused: {reply}")
        join_id = await self.signal.send("rtc.join", room=room, role=role)
        reply = await self.signal.result(join_id)
        if not reply["success"]:
            raise RuntimeError(f"rtc.join refused: {reply}")
        self._tasks.append(asyncio.create_task(self._server_offers(join_id, room)))
        async with self._lock:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            reply = await self.signal.call("rtc.offer", room=room, sdp=self.pc.localDescription.sdp)
            if not reply["success"]:
                raise RuntimeError(f"rtc.offer refused: {reply}")
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=reply["result"]["sdp"], type="answer")
            )

    async def _server_offers(self, join_id: int, room: str) -> None:
        assert self.signal is not None
        queue = self.signal.events(join_id)
        while True:
            event = await queue.get()
            if event["type"] != "offer":
                continue
            async with self._lock:
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=event["data"]["sdp"], type="offer")
                )
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self.signal.call("rtc.answer", room=room, sdp=self.pc.localDescription.sdp)

    async def close(self) -> None:
        await super().close()
        if self.signal is not None:
            await self.signal.close()


@dataclass
class LiveVisit:
    id: int
    peers: list[WsBenchPeer] = field(default_factory=list)
    players: list[MediaPlayer] = field(default_factory=list)

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
        for player in self.players:
            for track in (player.video, player.audio):
                if track is not None:
                    track.stop()


class Center:
    """The driver's side of the center: staff's HTTP session, the process for its CPU."""

    def __init__(self, base: str, data_dir: Path, pid: int) -> None:
        self.base = base
        self.data_dir = data_dir
        self.ps = psutil.Process(pid)
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.session_token = ""
        self.parties: list[dict[str, Any]] = []

    async def login(self) -> None:
        creds = json.loads((self.data_dir / "demo-credentials.json").read_text())
        async with self.http.post(
            f"{self.base}/api/v1/auth/login",
            json={"username": "visit1", "password": creds["users"]["visit1"]["password"]},
        ) as resp:
            body = await self._json(resp, 200)
            self.csrf = body["csrf_token"]
            self.session_token = resp.cookies["center_session"].value

    async def seed(self, count: int) -> None:
        async with self.http.post(f"{self.base}/bench/seed", json={"count": count}) as resp:
            self.parties = await self._json(resp, 200)

    async def call(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        async with self.http.post(
            f"{self.base}{path}", json=body, headers={"X-CSRF-Token": self.csrf}
        ) as resp:
            return await self._json(resp, status)

    @staticmethod
    async def _json(resp: aiohttp.ClientResponse, status: int) -> Any:
        if resp.status != status:
            raise RuntimeError(f"{resp.method} {resp.url}: {resp.status} {await resp.text()}")
        return await resp.json()

    async def open_visit(self, n: int, media: Path) -> LiveVisit:
        """Book, approve, join by code (relative), join (terminal, monitor), admit."""
        party = self.parties[n]
        starts_at = datetime.now(UTC) + timedelta(minutes=2)
        visit = await self.call(
            "/api/v1/visits",
            {
                "inmate_id": party["inmate_id"],
                "relative_ids": [party["relative_id"]],
                "starts_at": starts_at.isoformat(),
            },
            201,
        )
        url = f"/api/v1/visits/{visit['id']}"
        codes = (await self.call(f"{url}/approve", {}))["join_codes"]
        joined = await self.call("/api/v1/visits/join", {"code": codes[0]["join_code"]})
        room = joined["room_id"]
        live = LiveVisit(visit["id"])
        for token in (joined["guest_token"], party["terminal_token"]):
            player = MediaPlayer(str(media), decode=False)
            live.players.append(player)
            peer = WsBenchPeer(player, 1)
            peer.add_transceivers(player.video, player.audio)
            live.peers.append(peer)
            await peer.join_ws(self.http, self.base, token, room, "party")
        monitor = WsBenchPeer(None, 2)
        monitor.add_transceivers()
        live.peers.append(monitor)
        await monitor.join_ws(self.http, self.base, self.session_token, room, "monitor")
        # the monitor's media must be flowing before the admit finds it
        for _ in range(200):
            if len(monitor.video_streams()) >= 2 and all(
                s.arrivals for s in monitor.video_streams()
            ):
                break
            await asyncio.sleep(0.05)
        state = (await self.call(f"{url}/admit", {}))["state"]
        if state != "live":
            raise RuntimeError(f"visit {visit['id']} is {state} after the admit")
        return live

    async def close(self) -> None:
        await self.http.close()


async def cpu_over(
    ps: psutil.Process, warmup_s: float, window_s: float
) -> tuple[float, float, float]:
    """The process's CPU (% of one core) over a window after a warm-up; the window's ends."""
    await asyncio.sleep(warmup_s)
    ps.cpu_percent(None)
    start = time.monotonic()
    await asyncio.sleep(window_s)
    return ps.cpu_percent(None), start, time.monotonic()


def viewer_fps(peers: list[Peer], start: float, end: float) -> list[float]:
    return [s.fps(start, end) for p in peers for s in p.video_streams()]


def decode_errors(peers: list[Peer]) -> int:
    return sum(s.decode_errors for p in peers for s in p.video_streams())


# Phases -------------------------------------------------------------------------------------


async def media_core_phase(media: Path, rooms: int, warmup: float, window: float) -> float:
    """CPU per recorded room (two parties + a monitor) of the media core alone."""
    server = ServerProcess("forward", _free_port())
    await server.start()
    opened: list[BenchRoom] = []
    try:
        idle = (await measure(server, warmup, window)).cpu
        opened = [await open_room(server, media, i, record=True) for i in range(rooms)]
        busy = await measure(server, warmup, window)
        fps = viewer_fps([p for r in opened for p in r.peers], busy.start, busy.end)
        _LOGGER.info(
            "media core: %d rooms %.1f%% (idle %.1f%%), min fps %.1f",
            rooms,
            busy.cpu,
            idle,
            min(fps),
        )
        return (busy.cpu - idle) / rooms
    finally:
        for room in opened:
            await room.close(server)
        await server.stop()


async def center_phase(
    center: Center, media: Path, steps: list[int], warmup: float, window: float
) -> dict[str, Any]:
    idle, _, _ = await cpu_over(center.ps, warmup, window)
    visits: list[LiveVisit] = []
    held, per_visit, worst_fps = 0, None, None
    detail: dict[str, Any] = {}
    try:
        for target in steps:
            while len(visits) < target:
                visits.append(await center.open_visit(len(visits), media))
            peers: list[Peer] = [p for v in visits for p in v.peers]
            cpu, start, end = await cpu_over(center.ps, warmup, window)
            fps = viewer_fps(peers, start, end)
            if len(fps) < 4 * target or min(fps) < MIN_FPS:
                # the peers share the machine: one noisy window is not a verdict
                cpu, start, end = await cpu_over(center.ps, 0.0, window)
                fps = viewer_fps(peers, start, end)
            low = min(fps) if len(fps) == 4 * target else 0.0
            detail[str(target)] = {"cpu": round(cpu, 1), "min_fps": round(low, 1)}
            _LOGGER.info(
                "center: %d visits %.1f%% (idle %.1f%%), min fps %.1f", target, cpu, idle, low
            )
            if low < MIN_FPS or decode_errors(peers):
                break
            held, per_visit, worst_fps = target, (cpu - idle) / target, low
    finally:
        for visit in visits:
            await visit.close()
    return {
        "idle": idle,
        "held": held,
        "per_visit": per_visit,
        "min_fps": worst_fps,
        "steps": detail,
    }


def _spawn_center(port: int, data_dir: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(port), "--data-dir", data_dir],
        cwd=str(ROOT),
    )


async def _ready(base: str, limit_s: float = 90.0) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base} not ready within {limit_s} s")


async def run(quick: bool) -> dict[str, Any]:
    media = ensure_media_file(60 if quick else 180)
    warmup, window = (0.6, 1.5) if quick else (2.0, 5.0)
    steps = [2, 4] if quick else [2, 4, 6, 8, 10, 12, 14, 16]
    core_rooms = 2 if quick else 4
    per_room = await media_core_phase(media, core_rooms, warmup, window)
    with tempfile.TemporaryDirectory(prefix="bench-visits-") as tmp:
        port = _free_port()
        proc = _spawn_center(port, tmp)
        center: Center | None = None
        try:
            base = f"http://127.0.0.1:{port}"
            await _ready(base)
            center = Center(base, Path(tmp), proc.pid)
            await center.login()
            await center.seed(max(steps))
            result = await center_phase(center, media, steps, warmup, window)
        finally:
            if center is not None:
                await center.close()
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:  # a stuck server is killed
                proc.kill()
    per_visit = result["per_visit"]
    return {
        "cpu_pct_per_visit": None if per_visit is None else round(per_visit, 2),
        "visits_per_process": result["held"],
        "target_cpu_pct_per_visit": TARGET_CPU_PCT,
        "media_core_cpu_pct_per_room": round(per_room, 2),
        "visit_vs_media_core": (
            None if per_visit is None else round(per_visit / max(per_room, 0.1), 2)
        ),
        "idle_cpu_pct": round(result["idle"], 1),
        "min_fps": None if result["min_fps"] is None else round(result["min_fps"], 1),
        "steps": result["steps"],
        "quick": quick,
        "cpus": psutil.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under 30 s, same keys")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.serve:
        serve_center(args.port, args.data_dir)
        return
    _LOGGER.setLevel(logging.INFO)
    print(json.dumps(asyncio.run(run(args.quick))), flush=True)


if __name__ == "__main__":
    main()
