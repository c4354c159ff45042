"""``spotcheck.ringing`` webhook: wake the subject's phone through the app vendor's push.

Each ring attempt posts one signed JSON body to ``spotcheck_webhook_url``. The header
``X-Center-Signature: sha256=<hex>`` is HMAC-SHA256 of the exact body bytes with
``spotcheck_webhook_secret``; ``X-Center-Delivery`` names the delivery
(``<spotcheck>-<attempt>-<try>``) so a receiver can drop duplicates.

Delivery rides on durable timers, at least once: the timer for try *n* schedules try *n+1*
(after 5 s, doubling) in its own transaction before it posts, and a 2xx answer cancels that
next try. A crash between the two only means one more delivery. Every try — status code or
error — is an item on the spot-check. Tries stop when the call is no longer ringing (no
point waking a phone for a call that is over) or after ``spotcheck_webhook_attempts``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from typing import Any, Final

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.alarm_log import dumps
from alerts.spotcheck_models import ItemType, SpotCheck, SpotCheckItem, SpotCheckState
from center.clock import Clock
from center.timers import AfterCommit, FiredTimer, TimerService

_LOGGER = logging.getLogger(__name__)

KIND: Final = "spotcheck.webhook"
EVENT: Final = "spotcheck.ringing"
FIRST_BACKOFF_S: Final = 5.0
MAX_BACKOFF_S: Final = 600.0
POST_TIMEOUT_S: Final = 10.0


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SpotCheckWebhook:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        timers: TimerService,
        *,
        url: str,
        secret: str,
        attempts: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._timers = timers
        self.url = url
        self._secret = secret
        self.attempts = attempts
        self.delivered = 0
        self.failed = 0
        timers.register(KIND, self._on_due)

    def __repr__(self) -> str:
        return f"<SpotCheckWebhook {self.url} delivered={self.delivered} failed={self.failed}>"

    def _key(self, spotcheck_id: int, attempt: int, n: int) -> str:
        return f"spotcheck:{spotcheck_id}:webhook:{attempt}:{n}"

    async def schedule(self, session: AsyncSession, sc: SpotCheck) -> None:
        """The service's ringing hook: the first try of this attempt, due now."""
        await self._timers.schedule(
            session,
            kind=KIND,
            key=self._key(sc.id, sc.attempt, 1),
            due_at=self._clock.now(),
            ref=f"spotcheck:{sc.id}:webhook",
            payload={"spotcheck_id": sc.id, "attempt": sc.attempt, "n": 1},
        )

    def body(self, sc: SpotCheck, n: int) -> bytes:
        payload: dict[str, Any] = {
            "type": EVENT,
            "delivery": f"{sc.id}-{sc.attempt}-{n}",
            "spotcheck": {
                "id": sc.id,
                "subject_id": sc.subject_id,
                "attempt": sc.attempt,
                "room_id": sc.room_id,
                "officer": sc.officer_name,
                "ring_until": sc.ring_due_at.isoformat() if sc.ring_due_at else None,
            },
            "join": {
                "spotcheck": f"/api/v1/spotchecks/{sc.id}",
                "answer": f"/api/v1/spotchecks/{sc.id}/answer",
                "websocket": "/ws",
                "room": sc.room_id,
            },
            "sent_at": self._clock.now().isoformat(),
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def _on_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        sc = await session.get(SpotCheck, int(timer.payload["spotcheck_id"]))
        attempt, n = int(timer.payload["attempt"]), int(timer.payload["n"])
        if sc is None or sc.state != SpotCheckState.RINGING or sc.attempt != attempt:
            return None
        next_key = self._key(sc.id, attempt, n + 1)
        if n < self.attempts:
            delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (n - 1))
            await self._timers.schedule(
                session,
                kind=KIND,
                key=next_key,
                due_at=timer.fired_at + timedelta(seconds=delay),
                ref=f"spotcheck:{sc.id}:webhook",
                payload={"spotcheck_id": sc.id, "attempt": attempt, "n": n + 1},
            )
        body = self.body(sc, n)
        delivery = f"{sc.id}-{attempt}-{n}"
        spotcheck_id = sc.id

        async def deliver() -> None:
            status, error = await self._post(body, delivery)
            ok = status is not None and 200 <= status < 300
            async with self._sessionmaker() as s:
                s.add(
                    SpotCheckItem(
                        spotcheck_id=spotcheck_id,
                        at=self._clock.now(),
                        type=str(ItemType.WEBHOOK),
                        actor="system:webhook",
                        data=dumps(
                            {
                                "delivery": delivery,
                                "attempt": attempt,
                                "try": n,
                                "status": status,
                                "ok": ok,
                                "error": error,
                            }
                        ),
                    )
                )
                if ok:
                    await self._timers.cancel(s, key=next_key)
                await s.commit()
            if ok:
                self.delivered += 1
            else:
                self.failed += 1
                _LOGGER.warning("webhook %s: try %s failed (%s)", delivery, n, error or status)

        return deliver

    async def _post(self, body: bytes, delivery: str) -> tuple[int | None, str]:
        headers = {
            "Content-Type": "application/json",
            "X-Center-Event": EVENT,
            "X-Center-Delivery": delivery,
            "X-Center-Signature": sign(self._secret, body),
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S)) as http,
                http.post(self.url, data=body, headers=headers) as resp,
            ):
                await resp.read()
                return resp.status, "" if resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
