"""Visit notices to relatives through an SMS or WeChat gateway (a signed webhook).

Kinds: ``approved`` (with the relative's join code and join link), ``refused`` (with the
reason), ``cancelled`` and ``reminder`` (18:00 local time on the day before the slot). Each
is one row in ``visit_notices`` per (visit, kind, relative), written in the transaction that
approves, refuses or cancels the visit, so a notice exists exactly when the change does.

Each try posts one JSON body to ``visit_notify_url``. ``X-Center-Signature: sha256=<hex>``
is HMAC-SHA256 of the exact body bytes with ``visit_notify_secret``; ``X-Center-Delivery``
(``visit-<id>-<kind>-<relative>``) is the same on every try of one notice, so the gateway
drops a repeat; the body's ``try`` counts the tries.

Delivery rides on durable timers (``center/timers.py``), at least once: the timer of try
*n* schedules try *n+1* (after 30 s, doubling) in its own transaction before it posts, and
a 2xx answer cancels that next try and marks the notice ``sent``. A restart therefore loses
no notice, and a crash between the post and its record only means one more try with the same
delivery id. After ``visit_notify_attempts`` failed tries the notice is ``failed``.

The join code is never stored in clear: the approval seals it (AES-GCM under a key derived
from ``visit_notify_secret``) into the notice row, and the seal is wiped once the notice is
sent, has failed or is no longer wanted. With ``visit_notify_url`` empty the notices are
recorded as ``skipped`` and nothing is sealed or posted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from datetime import datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import aiohttp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center.clock import Clock
from center.timers import AfterCommit, FiredTimer, TimerService
from center.visits.models import (
    Inmate,
    NoticeKind,
    NoticeState,
    Prison,
    Relative,
    Visit,
    VisitNotice,
    VisitParty,
    VisitState,
)
from center.visits.view import JoinCodeOut

_LOGGER = logging.getLogger(__name__)

KIND: Final = "visit.notify"
FIRST_BACKOFF_S: Final = 30.0
MAX_BACKOFF_S: Final = 1800.0
POST_TIMEOUT_S: Final = 10.0
REMINDER_AT: Final = time(18, 0)
"""Local time of the reminder on the day before the slot."""
_STILL_ON: Final = frozenset({VisitState.APPROVED, VisitState.WAITING})
"""A visit an ``approved`` notice or a reminder is still worth sending for."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_id(visit_id: int, kind: str, relative_id: int) -> str:
    return f"visit-{visit_id}-{kind}-{relative_id}"


def reminder_due(starts_at: datetime, tz: ZoneInfo) -> datetime:
    """18:00 local time on the day before the slot."""
    day = starts_at.astimezone(tz).date() - timedelta(days=1)
    return datetime.combine(day, REMINDER_AT, tz)


class Sealer:
    """AES-GCM under a key derived from the notify secret; the associated data binds a seal
    to its notice, so a seal copied to another row does not open."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"center visit notice\0" + secret.encode()).digest())

    def seal(self, data: dict[str, str], bound_to: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, json.dumps(data).encode(), bound_to.encode())
        return base64.urlsafe_b64encode(nonce + ct).decode()

    def open(self, sealed: str, bound_to: str) -> dict[str, str] | None:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            plain = self._aead.decrypt(raw[:12], raw[12:], bound_to.encode())
        except (InvalidTag, ValueError):
            return None
        out = json.loads(plain)
        return out if isinstance(out, dict) else None


class VisitNotifier:
    """Records the notices in the caller's transaction and delivers them on the timers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        timers: TimerService,
        *,
        tz: ZoneInfo,
        url: str,
        secret: str,
        attempts: int,
        base_url: str,
        minutes: int,
        join_early_minutes: int,
        center_name: str,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._timers = timers
        self._tz = tz
        self.url = url
        self._secret = secret
        self._sealer = Sealer(secret)
        self.attempts = attempts
        self.base_url = base_url.rstrip("/")
        self._minutes = minutes
        self._early = join_early_minutes
        self._center = center_name
        self._http: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0
        timers.register(KIND, self._on_due)

    def __repr__(self) -> str:
        return f"<VisitNotifier {self.url or 'off'} sent={self.sent} failed={self.failed}>"

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    async def start(self) -> None:
        """One HTTP session for the app's life (connections to the gateway are reused)."""
        if self.enabled and self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- recording (in the caller's transaction) ------------------------------------------

    async def approved(self, session: AsyncSession, visit: Visit, codes: list[JoinCodeOut]) -> None:
        """Each relative's code and link now, and a reminder the evening before (unless
        that evening is already past)."""
        now = self._clock.now()
        remind_at = reminder_due(visit.starts_at, self._tz)
        for code in codes:
            sealed = ""
            if self.enabled:
                sealed = self._sealer.seal(
                    {"join_code": code.join_code, "join_url": code.join_url},
                    delivery_id(visit.id, NoticeKind.APPROVED, code.relative_id),
                )
            await self._add(
                session, visit, code.relative_id, NoticeKind.APPROVED, now, sealed=sealed
            )
            if remind_at > now:
                await self._add(session, visit, code.relative_id, NoticeKind.REMINDER, remind_at)

    async def ended(
        self, session: AsyncSession, visit: Visit, kind: NoticeKind, reason: str
    ) -> None:
        """Refused or cancelled: tell every relative on the visit; a pending reminder and an
        unsent code are dropped."""
        now = self._clock.now()
        await session.execute(
            update(VisitNotice)
            .where(
                VisitNotice.visit_id == visit.id,
                VisitNotice.state == NoticeState.PENDING,
                VisitNotice.kind.in_([NoticeKind.REMINDER, NoticeKind.APPROVED]),
            )
            .values(state=NoticeState.CANCELLED, sealed="", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await self._timers.cancel(session, ref=self._ref(visit.id, NoticeKind.REMINDER))
        await self._timers.cancel(session, ref=self._ref(visit.id, NoticeKind.APPROVED))
        relatives = await session.scalars(
            select(VisitParty.relative_id)
            .where(VisitParty.visit_id == visit.id)
            .order_by(VisitParty.id)
        )
        for relative_id in list(relatives):
            await self._add(session, visit, relative_id, kind, now, reason=reason)

    @staticmethod
    def _ref(visit_id: int, kind: str) -> str:
        return f"visit-notice:{visit_id}:{kind}"

    @staticmethod
    def _key(notice_id: int, n: int) -> str:
        return f"visit-notice:{notice_id}:try{n}"

    async def _add(
        self,
        session: AsyncSession,
        visit: Visit,
        relative_id: int,
        kind: NoticeKind,
        due_at: datetime,
        *,
        reason: str = "",
        sealed: str = "",
    ) -> None:
        now = self._clock.now()
        notice = VisitNotice(
            visit_id=visit.id,
            relative_id=relative_id,
            kind=kind,
            state=NoticeState.PENDING if self.enabled else NoticeState.SKIPPED,
            due_at=due_at,
            attempts=0,
            last_error="",
            reason=reason,
            sealed=sealed,
            created_at=now,
            updated_at=now,
        )
        session.add(notice)
        await session.flush()
        if self.enabled:
            await self._schedule(session, notice, 1, due_at)

    async def _schedule(
        self, session: AsyncSession, notice: VisitNotice, n: int, due_at: datetime
    ) -> None:
        await self._timers.schedule(
            session,
            kind=KIND,
            key=self._key(notice.id, n),
            ref=self._ref(notice.visit_id, notice.kind),
            due_at=due_at,
            payload={"notice_id": notice.id, "n": n},
        )

    # -- delivery -------------------------------------------------------------------------

    async def _on_due(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        notice = await session.get(VisitNotice, int(timer.payload["notice_id"]))
        n = int(timer.payload["n"])
        if notice is None or notice.state != NoticeState.PENDING or not self.enabled:
            return None
        visit = await session.get(Visit, notice.visit_id)
        relative = await session.get(Relative, notice.relative_id)
        if visit is None or relative is None:
            return None
        delivery = delivery_id(visit.id, notice.kind, relative.id)
        secret: dict[str, str] | None = None
        if notice.kind == NoticeKind.APPROVED:
            secret = self._sealer.open(notice.sealed, delivery) if notice.sealed else None
        stale = notice.kind in (NoticeKind.APPROVED, NoticeKind.REMINDER) and (
            visit.state not in _STILL_ON
        )
        if stale or (notice.kind == NoticeKind.APPROVED and secret is None):
            # ended meanwhile, or the code no longer opens (the secret was changed)
            notice.state = NoticeState.CANCELLED if stale else NoticeState.FAILED
            notice.last_error = "" if stale else "the sealed join code does not open"
            notice.sealed = ""
            notice.updated_at = timer.fired_at
            await session.flush()
            return None
        next_key = self._key(notice.id, n + 1)
        if n < self.attempts:
            delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (n - 1))
            await self._schedule(session, notice, n + 1, timer.fired_at + timedelta(seconds=delay))
        notice.attempts = n
        notice.updated_at = timer.fired_at
        await session.flush()
        inmate = await session.get(Inmate, visit.inmate_id)
        prison = await session.get(Prison, visit.prison_id)
        body = self.body(notice, visit, relative, inmate, prison, n, secret)
        notice_id, kind, last = notice.id, notice.kind, n >= self.attempts

        async def deliver() -> None:
            status, error = await self._post(body, delivery, kind)
            ok = status is not None and 200 <= status < 300
            now = self._clock.now()
            async with self._sessionmaker() as s:
                row = await s.get(VisitNotice, notice_id)
                if row is None:
                    return
                row.last_status = status
                row.last_error = error[:300]
                row.updated_at = now
                if row.state == NoticeState.PENDING and ok:
                    row.state, row.sent_at, row.sealed = NoticeState.SENT, now, ""
                    await self._timers.cancel(s, key=next_key)
                elif row.state == NoticeState.PENDING and last:
                    row.state, row.sealed = NoticeState.FAILED, ""
                await s.commit()
            if ok:
                self.sent += 1
            else:
                self.failed += 1
                _LOGGER.warning("visit notice %s: try %s failed (%s)", delivery, n, error or status)

        return deliver

    def _when(self, visit: Visit) -> str:
        return visit.starts_at.astimezone(self._tz).strftime("%Y-%m-%d %H:%M")

    def body(
        self,
        notice: VisitNotice,
        visit: Visit,
        relative: Relative,
        inmate: Inmate | None,
        prison: Prison | None,
        n: int,
        secret: dict[str, str] | None,
    ) -> bytes:
        local = visit.starts_at.astimezone(self._tz)
        payload: dict[str, Any] = {
            "type": f"visit.{notice.kind}",
            "delivery": delivery_id(visit.id, notice.kind, relative.id),
            "try": n,
            "visit": {
                "id": visit.id,
                "prison_id": visit.prison_id,
                "prison_name": prison.name if prison else "",
                "inmate_id": visit.inmate_id,
                "inmate_name": inmate.name if inmate else "",
                "starts_at": visit.starts_at.isoformat(),
                "ends_at": visit.ends_at.isoformat(),
                "local_time": local.strftime("%Y-%m-%d %H:%M"),
                "state": visit.state,
            },
            "relative": {"id": relative.id, "name": relative.name, "phone": relative.phone},
            "text": self.text(notice, visit, relative, inmate, secret),
            "sent_at": self._clock.now().isoformat(),
        }
        if notice.kind in (NoticeKind.REFUSED, NoticeKind.CANCELLED):
            payload["reason"] = notice.reason
        if secret is not None:
            payload["join_code"] = secret["join_code"]
            payload["join_url"] = self.base_url + secret["join_url"]
            payload["join_from"] = (visit.starts_at - timedelta(minutes=self._early)).isoformat()
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def text(
        self,
        notice: VisitNotice,
        visit: Visit,
        relative: Relative,
        inmate: Inmate | None,
        secret: dict[str, str] | None,
    ) -> str:
        """The message as the gateway may send it (zh-CN, short enough for two SMS)."""
        who = inmate.name if inmate else visit.inmate_id
        when = self._when(visit)
        head = f"【{self._center}】{relative.name}您好："
        if notice.kind == NoticeKind.APPROVED and secret is not None:
            return (
                f"{head}您与{who}的视频会见已批准，时间{when}，共{self._minutes}分钟。"
                f"会见码{secret['join_code']}（只能用一次），开始前{self._early}分钟起打开"
                f"{self.base_url + secret['join_url']}进入。"
            )
        if notice.kind == NoticeKind.REFUSED:
            return f"{head}您申请的{when}与{who}的视频会见未获批准。原因：{notice.reason}"
        if notice.kind == NoticeKind.CANCELLED:
            why = f"原因：{notice.reason}。" if notice.reason else ""
            return f"{head}{when}与{who}的视频会见已取消。{why}可以重新预约其他时间。"
        return (
            f"{head}提醒您：明天{visit.starts_at.astimezone(self._tz).strftime('%H:%M')}"
            f"是您与{who}的视频会见。请提前{self._early}分钟用收到的会见码或链接进入。"
        )

    async def _post(self, body: bytes, delivery: str, kind: str) -> tuple[int | None, str]:
        headers = {
            "Content-Type": "application/json",
            "X-Center-Event": f"visit.{kind}",
            "X-Center-Delivery": delivery,
            "X-Center-Signature": sign(self._secret, body),
        }
        if self._http is None:
            await self.start()
        assert self._http is not None
        try:
            async with self._http.post(self.url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status, "" if resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
