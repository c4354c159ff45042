"""The time seam.

Every deadline, SLA and visit limit in the center reads time through a :class:`Clock`
so that tests can advance a :class:`FakeClock` instead of sleeping. Code that waits for a
point in time calls :meth:`Clock.sleep_until`, which a fake clock wakes when it is
advanced past that point.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the rest of the center needs from time."""

    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""

    async def sleep_until(self, when: datetime) -> None:
        """Wait until :meth:`now` is at or past ``when``."""


class RealClock:
    """The system clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, when: datetime) -> None:
        # Re-check after waking: the wall clock may have been stepped (NTP) while we slept.
        while True:
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 60.0))


class FakeClock:
    """A clock that only moves when a test calls :meth:`advance` or :meth:`set`.

    Sleepers are kept in a heap by wake-up time; advancing wakes every sleeper whose time
    has come, in order, and yields to the loop so that woken tasks run before ``advance``
    returns.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._mono = 1000.0
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._counter), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """Number of tasks currently waiting on this clock (tests use it to sync)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float = 0.0, **kwargs: float) -> None:
        """Move time forward by ``seconds`` (or ``timedelta`` keyword arguments)."""
        delta = timedelta(seconds=seconds, **kwargs)
        await self.set(self._now + delta)

    async def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a FakeClock never goes backwards")
        # Step through each wake-up so a woken task sees the time it asked for and can
        # schedule its next sleep before later sleepers wake.
        while self._sleepers and self._sleepers[0][0] <= when:
            due, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._mono += (due - self._now).total_seconds()
            self._now = max(self._now, due)
            fut.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        self._mono += (when - self._now).total_seconds()
        self._now = when
        for _ in range(5):
            await asyncio.sleep(0)
