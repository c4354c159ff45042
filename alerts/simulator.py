"""The demo simulator: phones, terminals and bracelets talking to the real ingestion API.

With ``--demo`` (and without ``--no-simulator``) it posts over HTTP to the server's own port
with the demo integration key, exactly as an integration would: check-ins for every open
window (about 94% on time, some late, some missing), location fixes (a few people wander out
of the city, one leaves the phone at home) and now and then a device event. With the demo's
short windows a newcomer sees ``no_checkin`` alarms within two minutes of start.

The port comes from ``simulator_url`` or, when the server listens on an ephemeral port, from
this process's listening sockets (checked with ``/healthz`` before use).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select

from alerts.engine import AlertEngine
from center.models import Subject
from config.settings import Settings

_LOGGER = logging.getLogger(__name__)
ON_TIME, LATE = 0.94, 0.03  # the rest miss the window
_TICK_S = 2.0
_FIX_EVERY_S = 30.0
_DEVICE_EVERY_S = 20.0
_BATCH = 500
_OUTSIDE = (23.129, 113.264)  # 广州: outside the demo city


def _eid() -> str:
    return f"sim-{uuid.uuid4().hex}"


class Simulator:
    def __init__(
        self, settings: Settings, engine: AlertEngine, integration_key: str, *, seed: int = 7
    ) -> None:
        self._settings = settings
        self._key = integration_key
        self._engine = engine
        self._clock = engine.clock
        self._rng = random.Random(seed)
        self._planned: dict[str, float] = {}
        self._due: list[tuple[float, str]] = []
        self._homes: dict[str, tuple[float, float]] = {}
        self._auth: dict[str, str] = {}
        self.posted = 0

    def __repr__(self) -> str:
        return f"<Simulator posted={self.posted}>"

    # -- where to post -------------------------------------------------------------------------

    async def _base_url(self, http: aiohttp.ClientSession) -> str:
        settings = self._settings
        while True:
            for base in self._candidates(settings.simulator_url, settings.host, settings.port):
                try:
                    async with http.get(
                        f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=3)
                    ) as r:
                        if r.status == 200:
                            return base
                except (aiohttp.ClientError, TimeoutError):
                    continue
            await self._clock.sleep(1.0)

    @staticmethod
    def _candidates(url: str, host: str, port: int) -> list[str]:
        if url:
            return [url.rstrip("/")]
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        if port:
            return [f"http://{host}:{port}"]
        import psutil

        ports = sorted(
            {
                c.laddr.port
                for c in psutil.Process().net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
        )
        return [f"http://{host}:{p}" for p in ports]

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        key = self._key
        async with self._engine.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Subject.id, Subject.home_lat, Subject.home_lon).where(Subject.active)
                )
            ).all()
        self._homes = {sid: (lat or 22.54, lon or 114.05) for sid, lat, lon in rows}
        subjects = sorted(self._homes)
        wanderers = subjects[5:8]
        separated = subjects[9]
        self._auth = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession() as http:
            base = await self._base_url(http)
            _LOGGER.info("demo simulator posting to %s for %s subjects", base, len(subjects))
            last_fix = last_device = 0.0
            while True:
                now = self._clock.now()
                ts = now.timestamp()
                self._plan(subjects, ts)
                await self._post_due(http, base, ts)
                if ts - last_fix >= _FIX_EVERY_S:
                    last_fix = ts
                    await self._post_fixes(http, base, now, subjects, wanderers, separated)
                if ts - last_device >= _DEVICE_EVERY_S:
                    last_device = ts
                    await self._post_device_event(http, base, now, subjects)
                await self._clock.sleep(_TICK_S)

    def _plan(self, subjects: Sequence[str], ts: float) -> None:
        """Decide, once per subject and window, whether and when it checks in."""
        d = self._engine.directory
        plans = self._engine.plans
        for sid in subjects:
            idx = d.index.get(sid)
            if idx is None:
                continue
            w = plans.plans[d.plan[idx]].current_window(ts)
            if w is None or self._planned.get(sid) == w.start:
                continue
            self._planned[sid] = w.start
            roll = self._rng.random()
            if roll < ON_TIME:
                at = self._rng.uniform(max(ts, w.start), max(ts, w.end) - 1e-3)
            elif roll < ON_TIME + LATE and plans.lateness_s > 2 * _TICK_S:
                at = self._rng.uniform(
                    w.deadline + _TICK_S, w.deadline + plans.lateness_s - _TICK_S
                )
            else:
                continue
            heapq.heappush(self._due, (at, sid))

    async def _post_due(self, http: aiohttp.ClientSession, base: str, ts: float) -> None:
        items = []
        now = datetime.fromtimestamp(ts, UTC)
        while self._due and self._due[0][0] <= ts:
            _, sid = heapq.heappop(self._due)
            lat, lon = self._homes[sid]
            items.append(
                {
                    "event_id": _eid(),
                    "subject_id": sid,
                    "at": now.isoformat(),
                    "source": self._rng.choice(("app", "app", "app", "terminal")),
                    "lat": lat + self._rng.gauss(0, 0.002),
                    "lon": lon + self._rng.gauss(0, 0.002),
                    "accuracy_m": 15,
                    "face_verified": True,
                }
            )
        for i in range(0, len(items), _BATCH):
            await self._post(http, f"{base}/api/v1/checkins", items[i : i + _BATCH])

    async def _post_fixes(
        self,
        http: aiohttp.ClientSession,
        base: str,
        now: datetime,
        subjects: Sequence[str],
        wanderers: Sequence[str],
        separated: str,
    ) -> None:
        at = now.isoformat()
        outside = (now.minute // 5) % 2 == 1  # wanderers are out five minutes in ten
        items: list[dict[str, Any]] = []
        for sid in [
            *self._rng.sample(list(subjects), min(100, len(subjects))),
            *wanderers,
            separated,
        ]:
            lat, lon = _OUTSIDE if (outside and sid in wanderers) else self._homes[sid]
            for device in ("bracelet", "phone"):
                jitter = 0.03 if (sid == separated and device == "phone") else 0.0005
                items.append(
                    {
                        "event_id": _eid(),
                        "subject_id": sid,
                        "device": device,
                        "at": at,
                        "lat": lat + self._rng.gauss(0, jitter),
                        "lon": lon + self._rng.gauss(0, jitter),
                        "accuracy_m": 20,
                    }
                )
        await self._post(http, f"{base}/api/v1/locations", items)

    async def _post_device_event(
        self, http: aiohttp.ClientSession, base: str, now: datetime, subjects: Sequence[str]
    ) -> None:
        kind = self._rng.choices(("low_battery", "tamper", "sos"), weights=(8, 1, 1))[0]
        sid = self._rng.choice(list(subjects))
        await self._post(
            http,
            f"{base}/api/v1/device-events",
            [
                {
                    "event_id": _eid(),
                    "subject_id": sid,
                    "device_id": f"br-{sid}",
                    "kind": kind,
                    "at": (now - timedelta(seconds=1)).isoformat(),
                }
            ],
        )

    async def _post(
        self, http: aiohttp.ClientSession, url: str, items: list[dict[str, Any]]
    ) -> None:
        if not items:
            return
        try:
            async with http.post(url, json={"items": items}, headers=self._auth) as resp:
                if resp.status != 200:
                    _LOGGER.warning(
                        "simulator: %s answered %s: %s", url, resp.status, await resp.text()
                    )
                    return
                self.posted += len(items)
        except (aiohttp.ClientError, TimeoutError) as exc:
            _LOGGER.warning("simulator: posting to %s failed: %s", url, exc)
            await asyncio.sleep(0)
