"""Durable timers: rows in the ``timers`` table, fired once across restarts and instances.

SLA deadlines (acknowledge, report, the 24-hour loop) and shift ends must survive a restart
and must not fire twice when several instances share one database. So a timer is a row, not
an ``asyncio`` callback: every instance runs one :class:`TimerService` loop that looks for due
rows and *claims* each with ``UPDATE … SET state='fired', version=version+1 WHERE id=:id AND
state='pending' AND version=:v``. Exactly one claimer sees one updated row; the handler runs in
the claimer's transaction, so a handler that fails rolls the claim back and the timer is
retried later (with a back-off) instead of being lost.

The loop sleeps on the clock seam until the next due time, wakes early when this process adds
a sooner timer (after that transaction commits — waking before would find nothing), and polls
every ``poll_s`` seconds for timers that other instances added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from center.clock import Clock
from center.db import Base, UTCDateTime

_LOGGER = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class Timer(Base):
    """One deadline. ``key`` is unique so that scheduling the same deadline twice (two
    instances reacting to the same event) is a no-op; ``ref`` groups a resource's timers
    (``"alarm:42"``) so they can be cancelled together."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160), unique=True)
    ref: Mapped[str] = mapped_column(String(96), default="", index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default=TimerState.PENDING)
    version: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_timers_state_due_at", "state", "due_at"),)

    def __repr__(self) -> str:
        return f"<Timer {self.id} {self.key} {self.state} due {self.due_at.isoformat()}>"


@dataclass(frozen=True, slots=True)
class FiredTimer:
    """What a handler gets: the timer as it was claimed."""

    id: int
    kind: str
    key: str
    ref: str
    due_at: datetime
    fired_at: datetime
    payload: dict[str, Any]


AfterCommit = Callable[[], Awaitable[None]]
TimerHandler = Callable[[AsyncSession, FiredTimer], Awaitable[AfterCommit | None]]
"""Runs inside the claiming transaction; may return a coroutine function to run after the
commit (bus notifications belong there: never announce what may still roll back)."""


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return pg_insert if dialect == "postgresql" else sqlite_insert


class TimerService:
    """Schedules, cancels and fires timers; one per app instance."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        poll_s: float = 30.0,
        retry_s: float = 30.0,
        batch: int = 100,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._batch = batch
        self._handlers: dict[str, TimerHandler] = {}
        self._wakeup = asyncio.Event()
        self._wake_target: datetime | None = None
        self.fired = 0
        self.failures = 0

    def __repr__(self) -> str:
        return f"<TimerService kinds={sorted(self._handlers)} fired={self.fired}>"

    def register(self, kind: str, handler: TimerHandler) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for timer kind {kind!r} is already registered")
        self._handlers[kind] = handler

    # -- scheduling (in the caller's transaction) ------------------------------------------

    async def schedule(
        self,
        session: AsyncSession,
        *,
        kind: str,
        key: str,
        due_at: datetime,
        ref: str = "",
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Add a pending timer unless one with ``key`` exists; True when this call added it.

        The row commits with the caller's transaction; the loop is woken after that commit.
        """
        stmt = (
            _insert(session)(Timer)
            .values(
                kind=kind,
                key=key,
                ref=ref,
                due_at=due_at,
                state=TimerState.PENDING,
                version=1,
                attempts=0,
                payload=payload or {},
                created_at=self._clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        result = await session.execute(stmt)
        added = bool(getattr(result, "rowcount", 0))
        if added:
            self._poke_after_commit(session, due_at)
        return added

    async def cancel(
        self,
        session: AsyncSession,
        *,
        key: str | None = None,
        ref: str | None = None,
        kind: str | None = None,
    ) -> int:
        """Cancel pending timers by key, or by ref (optionally of one kind); returns how many."""
        if key is None and ref is None:
            raise ValueError("cancel() needs a key or a ref")
        conds: list[Any] = [Timer.state == TimerState.PENDING]
        if key is not None:
            conds.append(Timer.key == key)
        if ref is not None:
            conds.append(Timer.ref == ref)
        if kind is not None:
            conds.append(Timer.kind == kind)
        result = await session.execute(
            update(Timer)
            .where(*conds)
            .values(state=TimerState.CANCELLED, version=Timer.version + 1)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def _poke_after_commit(self, session: AsyncSession, due_at: datetime) -> None:
        def after_commit(_session: Any) -> None:
            self.poke(due_at)

        event.listen(session.sync_session, "after_commit", after_commit, once=True)

    def poke(self, due_at: datetime | None = None) -> None:
        """Wake the loop if ``due_at`` is sooner than what it sleeps for (None: always)."""
        if due_at is None or self._wake_target is None or due_at < self._wake_target:
            self._wakeup.set()

    # -- firing ---------------------------------------------------------------------------

    async def fire_due(self) -> int:
        """Claim and run every due timer of a registered kind; returns how many fired here."""
        if not self._handlers:
            return 0
        fired = 0
        while True:
            now = self._clock.now()
            async with self._sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(Timer.id, Timer.version)
                        .where(
                            Timer.state == TimerState.PENDING,
                            Timer.due_at <= now,
                            Timer.kind.in_(list(self._handlers)),
                        )
                        .order_by(Timer.due_at, Timer.id)
                        .limit(self._batch)
                    )
                ).all()
            for timer_id, version in rows:
                if await self._fire_one(timer_id, version):
                    fired += 1
            if len(rows) < self._batch:
                return fired

    async def _fire_one(self, timer_id: int, version: int) -> bool:
        now = self._clock.now()
        after: AfterCommit | None = None
        try:
            async with self._sessionmaker() as session:
                claimed = await session.execute(
                    update(Timer)
                    .where(
                        Timer.id == timer_id,
                        Timer.state == TimerState.PENDING,
                        Timer.version == version,
                    )
                    .values(state=TimerState.FIRED, version=version + 1, fired_at=now)
                    .execution_options(synchronize_session=False)
                )
                if not getattr(claimed, "rowcount", 0):
                    await session.rollback()
                    return False
                row = await session.get(Timer, timer_id)
                assert row is not None
                fired = FiredTimer(
                    row.id, row.kind, row.key, row.ref, row.due_at, now, dict(row.payload or {})
                )
                after = await self._handlers[row.kind](session, fired)
                await session.commit()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            _LOGGER.exception("timer %s failed; it will be retried", timer_id)
            await self._back_off(timer_id, version)
            return False
        self.fired += 1
        _LOGGER.debug("timer %s (%s) fired", timer_id, fired.key)
        if after is not None:
            try:
                await after()
            except Exception:
                _LOGGER.exception("after-commit step of timer %s failed", timer_id)
        return True

    async def _back_off(self, timer_id: int, version: int) -> None:
        async with self._sessionmaker() as session:
            row = await session.get(Timer, timer_id)
            if row is None or row.state != TimerState.PENDING or row.version != version:
                return
            delay = min(MAX_BACKOFF_S, self._retry_s * (2 ** min(row.attempts, 10)))
            await session.execute(
                update(Timer)
                .where(Timer.id == timer_id, Timer.version == version)
                .values(
                    attempts=Timer.attempts + 1,
                    version=version + 1,
                    due_at=self._clock.now() + timedelta(seconds=delay),
                )
            )
            await session.commit()

    async def next_due(self) -> datetime | None:
        async with self._sessionmaker() as session:
            return await session.scalar(
                select(func.min(Timer.due_at)).where(
                    Timer.state == TimerState.PENDING, Timer.kind.in_(list(self._handlers))
                )
            )

    async def run(self) -> None:
        """The loop; run it under the app's TaskSupervisor and cancel it on shutdown."""
        _LOGGER.info("timer loop started (%s)", ", ".join(sorted(self._handlers)))
        try:
            while True:
                # Clear before reading next_due: a timer added after this point sets the
                # event again, so the wait below cannot miss it.
                self._wakeup.clear()
                try:
                    await self.fire_due()
                    due = await self.next_due()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _LOGGER.exception("timer loop: database error; retrying")
                    due = None
                target = self._clock.now() + timedelta(seconds=self._poll_s)
                if due is not None and due < target:
                    target = due
                self._wake_target = target
                await self._sleep(target)
        finally:
            self._wake_target = None
            _LOGGER.info("timer loop stopped")

    async def _sleep(self, until: datetime) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep_until(until))
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (sleeper, waker):
                if not fut.done():
                    fut.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)
