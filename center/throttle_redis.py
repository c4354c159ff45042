"""The login throttle's counters in Redis, shared by every instance of the center.

Each operation is one Lua script, so two instances counting the same attempt at once cannot
both read a stale count. Times are the caller's clock seconds stored as sorted-set scores
and string values; key expiry is only garbage collection (longer than any window, lockout or
strike memory), so a fake clock in tests drives this store exactly as the in-process one.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import redis.asyncio as aioredis

from center.throttle import STRIKE_MEMORY_S

_ADD_FAILURE: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])
"""

_STRIKE: Final = """
redis.call('DEL', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1] - ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return redis.call('ZCARD', KEYS[2])
"""


class RedisThrottleStore:
    def __init__(self, url: str, *, key_prefix: str, keep_s: float) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, client_name="center-throttle", socket_connect_timeout=2.0, socket_timeout=2.0
        )
        self._prefix = f"{key_prefix}throttle:"
        self._keep = int(max(keep_s, STRIKE_MEMORY_S)) + 60
        self._add = self._redis.register_script(_ADD_FAILURE)
        self._strike = self._redis.register_script(_STRIKE)

    def _k(self, kind: str, key: str) -> str:
        return f"{self._prefix}{kind}:{key}"

    async def add_failure(self, key: str, now: float, window_s: float) -> int:
        args: list[Any] = [repr(now), repr(window_s), f"{now!r}:{secrets.token_hex(4)}", self._keep]
        return int(await self._add(keys=[self._k("fail", key)], args=args))

    async def count(self, key: str, now: float, window_s: float) -> int:
        return int(await self._redis.zcount(self._k("fail", key), f"({now - window_s!r}", "+inf"))

    async def strike(self, key: str, now: float) -> int:
        member = f"{now!r}:{secrets.token_hex(4)}"
        args: list[Any] = [repr(now), repr(STRIKE_MEMORY_S), member, self._keep]
        keys = [self._k("fail", key), self._k("strike", key)]
        return int(await self._strike(keys=keys, args=args))

    async def set_lock(self, key: str, until: float) -> None:
        await self._redis.set(self._k("lock", key), repr(until), ex=self._keep)

    async def locked_until(self, keys: tuple[str, ...]) -> float:
        values = await self._redis.mget([self._k("lock", k) for k in keys])
        return max((float(v) for v in values if v is not None), default=0.0)

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._k("fail", key), self._k("strike", key), self._k("lock", key))

    async def close(self) -> None:
        await self._redis.aclose()
