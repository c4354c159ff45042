"""Login throttling that a stranger cannot turn into a lockout of someone else.

Failures are counted per *(username, address)* pair and per address, never per username
alone: five wrong passwords for ``duty2`` from an attacker's machine lock that machine out of
``duty2`` (and, past a higher ceiling, out of every username), while ``duty2`` with the right
password from the officer's own desk — an address that has not failed — is never refused.
A pair that keeps failing after its lockout gets a longer one each time (``lockout_s``,
doubled per strike within a day, up to ``max_lockout_s``): slow enough to make guessing
useless, short enough that an officer who forgot the password is not locked out for a day.

The counters live in a :class:`ThrottleStore`: in process memory, or in Redis when the
center is configured with one, so that every instance behind a load balancer counts the
same attempts. Times are the clock seam's (stored as numbers in Redis too, so a fake clock
drives both); Redis expiry only collects garbage. If Redis is unreachable the throttle keeps
working on the in-process store rather than refusing every login.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from center.clock import Clock

_LOGGER = logging.getLogger(__name__)
STRIKE_MEMORY_S: Final = 24 * 3600.0
"""How long a pair's earlier lockouts make the next one longer."""


class ThrottleStore(Protocol):
    """Failure counts, lockouts and strikes by key; times are clock seconds."""

    async def add_failure(self, key: str, now: float, window_s: float) -> int:
        """Record a failure at ``now``; the failures within ``window_s``, this one included."""

    async def count(self, key: str, now: float, window_s: float) -> int:
        """The failures within ``window_s`` before ``now``."""

    async def strike(self, key: str, now: float) -> int:
        """Forget the key's failures and record a lockout at ``now``; returns the lockouts
        within :data:`STRIKE_MEMORY_S`, this one included."""

    async def set_lock(self, key: str, until: float) -> None:
        """Refuse ``key`` until ``until``."""

    async def locked_until(self, keys: tuple[str, ...]) -> float:
        """The latest lockout end among ``keys`` (0 when none)."""

    async def clear(self, key: str) -> None:
        """Forget the key's failures and strikes (a successful login)."""


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    strikes: deque[float] = field(default_factory=deque)


class MemoryThrottleStore:
    """One process's counters (the default without Redis, and the fallback during an
    outage). Bounded: past 100,000 keys, idle ones are dropped."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}

    async def add_failure(self, key: str, now: float, window_s: float) -> int:
        rec = self._records.setdefault(key, _Record())
        while rec.failures and rec.failures[0] <= now - window_s:
            rec.failures.popleft()
        rec.failures.append(now)
        if len(self._records) > 100_000:
            self._prune(now)
        return len(rec.failures)

    async def count(self, key: str, now: float, window_s: float) -> int:
        rec = self._records.get(key)
        return sum(1 for at in rec.failures if at > now - window_s) if rec else 0

    async def strike(self, key: str, now: float) -> int:
        rec = self._records.setdefault(key, _Record())
        rec.failures.clear()
        while rec.strikes and rec.strikes[0] <= now - STRIKE_MEMORY_S:
            rec.strikes.popleft()
        rec.strikes.append(now)
        return len(rec.strikes)

    async def set_lock(self, key: str, until: float) -> None:
        self._records.setdefault(key, _Record()).locked_until = until

    async def locked_until(self, keys: tuple[str, ...]) -> float:
        return max((r.locked_until for k in keys if (r := self._records.get(k))), default=0.0)

    async def clear(self, key: str) -> None:
        self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        idle = [
            k
            for k, r in self._records.items()
            if r.locked_until <= now and not r.failures and not r.strikes
        ]
        for key in idle or list(self._records)[: len(self._records) // 2]:
            del self._records[key]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    window_s: float
    lockout_s: float
    max_lockout_s: float
    address_max_failures: int


class LoginThrottle:
    """The policy over a store. ``scope`` separates uses (``login``, ``pair`` for wall
    pairing codes) that share a store."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_failures: int,
        window_s: float,
        lockout_s: float,
        max_lockout_s: float | None = None,
        address_max_failures: int | None = None,
        store: ThrottleStore | None = None,
    ) -> None:
        self._clock = clock
        self.policy = ThrottlePolicy(
            max_failures=max_failures,
            window_s=window_s,
            lockout_s=lockout_s,
            max_lockout_s=max(lockout_s, max_lockout_s or lockout_s * 12),
            address_max_failures=address_max_failures or max_failures * 6,
        )
        self._fallback = MemoryThrottleStore()
        self._store: ThrottleStore = store or self._fallback

    def share(self, store: ThrottleStore | None) -> None:
        """Count in ``store`` (Redis, shared by the instances) from now on; ``None``: back to
        this process's own counters."""
        self._store = store or self._fallback

    @staticmethod
    def _keys(scope: str, username: str, address: str) -> tuple[str, str]:
        """Usernames compare case-insensitively (``DUTY2`` is ``duty2``'s pair)."""
        return f"{scope}:pair:{username.lower()}|{address}", f"{scope}:addr:{address}"

    async def _call(self, name: str, *args: object) -> Any:
        store = self._store
        try:
            return await getattr(store, name)(*args)
        except Exception as exc:  # a Redis outage must not stop logins
            if store is self._fallback:
                raise
            _LOGGER.warning("login throttle: shared store failed (%s); counting locally", exc)
            return await getattr(self._fallback, name)(*args)

    async def retry_after(self, scope: str, username: str, address: str) -> float:
        """Seconds until this username may be tried from this address (0: go ahead)."""
        now = self._clock.monotonic()
        until = await self._call("locked_until", self._keys(scope, username, address))
        return max(0.0, float(until) - now)

    async def failure(self, scope: str, username: str, address: str) -> float:
        """Count a failed attempt; returns the lockout it started (seconds) or 0."""
        pair, addr = self._keys(scope, username, address)
        p = self.policy
        now = self._clock.monotonic()
        started = 0.0
        if await self._call("add_failure", pair, now, p.window_s) >= p.max_failures:
            strikes = int(await self._call("strike", pair, now))
            started = min(p.max_lockout_s, p.lockout_s * 2 ** min(strikes - 1, 30))
            await self._call("set_lock", pair, now + started)
        if await self._call("add_failure", addr, now, p.window_s) >= p.address_max_failures:
            await self._call("strike", addr, now)
            await self._call("set_lock", addr, now + p.lockout_s)
            started = max(started, p.lockout_s)
        return started

    async def attempts_left(self, scope: str, username: str, address: str) -> int:
        """Failures still allowed before this username is locked out from this address (or
        the address from all), so the login page can warn before the attempt that locks."""
        pair, addr = self._keys(scope, username, address)
        p = self.policy
        now = self._clock.monotonic()
        used_pair = int(await self._call("count", pair, now, p.window_s))
        used_addr = int(await self._call("count", addr, now, p.window_s))
        return max(0, min(p.max_failures - used_pair, p.address_max_failures - used_addr))

    async def success(self, scope: str, username: str, address: str) -> None:
        """A correct password: the pair starts afresh (the address's count stays)."""
        await self._call("clear", self._keys(scope, username, address)[0])
