"""Per-credential token buckets for the ingestion API.

Kept in process memory and timed by the clock seam; with several instances each enforces
the rate on its own share of the traffic. The cost of a request is its number of items, so
a batch of 500 spends what 500 single requests would.
"""

from __future__ import annotations

from dataclasses import dataclass

from center.clock import Clock


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(self, clock: Clock, *, rate_per_s: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, cost: int = 1) -> float:
        """Spend ``cost`` tokens; returns 0 when allowed, else seconds to wait.

        A request larger than the bucket is allowed when the bucket is full (the balance goes
        negative), so a too-small burst setting slows big batches instead of refusing them.
        """
        now = self._clock.monotonic()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(self._burst, now)
        b.tokens = min(self._burst, b.tokens + (now - b.at) * self._rate)
        b.at = now
        need = min(float(cost), self._burst)
        if b.tokens >= need:
            b.tokens -= cost
            return 0.0
        return (need - b.tokens) / self._rate
