"""Login throttling: per-username and per-address failure counts with a temporary lockout.

Kept in process memory (a restart clears it; with several instances each counts its own
attempts — documented in the README's known limits). Time comes from the clock seam.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from center.clock import Clock


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self, clock: Clock, *, max_failures: int, window_s: float, lockout_s: float
    ) -> None:
        self._clock = clock
        self._max = max_failures
        self._window = window_s
        self._lockout = lockout_s
        self._records: dict[str, _Record] = {}

    def retry_after(self, *keys: str) -> float:
        """Seconds until these keys may try again (0 when not locked)."""
        now = self._clock.monotonic()
        wait = 0.0
        for key in keys:
            rec = self._records.get(key)
            if rec is not None and rec.locked_until > now:
                wait = max(wait, rec.locked_until - now)
        return wait

    def failure(self, *keys: str) -> float:
        """Count a failure; returns the lockout started (seconds) or 0."""
        now = self._clock.monotonic()
        started = 0.0
        for key in keys:
            rec = self._records.setdefault(key, _Record())
            while rec.failures and rec.failures[0] <= now - self._window:
                rec.failures.popleft()
            rec.failures.append(now)
            if len(rec.failures) >= self._max:
                rec.locked_until = now + self._lockout
                rec.failures.clear()
                started = self._lockout
        if len(self._records) > 100_000:
            self._prune(now)
        return started

    def attempts_left(self, *keys: str) -> int:
        """Failures still allowed before a lockout (the smallest over ``keys``), so that the
        login page can warn before the attempt that would lock."""
        now = self._clock.monotonic()
        left = self._max
        for key in keys:
            rec = self._records.get(key)
            if rec is not None:
                recent = sum(1 for at in rec.failures if at > now - self._window)
                left = min(left, self._max - recent)
        return max(0, left)

    def success(self, *keys: str) -> None:
        for key in keys:
            self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [
            k for k, r in self._records.items() if r.locked_until <= now and not r.failures
        ]:
            del self._records[key]
