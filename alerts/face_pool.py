"""A bounded pool of worker processes that read faces off the event loop.

dlib holds the GIL for the whole of an embedding (about 100 ms), so a thread would stall
the loop — and the alarm path with it. Worker processes (``spawn``: no copy of the running
server) each load the models once. The pool admits at most ``capacity`` photos waiting or in
work; :meth:`reserve` says up front whether a batch fits, so the HTTP layer can answer 429
with ``Retry-After`` before it records anything, instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Final

from alerts.faces import FaceModels, FaceReading, decode_jpeg
from alerts.liveness import LandmarkModel, Liveness

_LOGGER = logging.getLogger(__name__)
_MODELS: FaceModels | None = None
_LANDMARKS: LandmarkModel | None = None
SECONDS_PER_PHOTO: Final = 0.15


def _init_worker() -> None:
    global _MODELS
    _MODELS = FaceModels()


def _read(data: bytes) -> FaceReading:
    if _MODELS is None:  # pragma: no cover - the initializer always ran
        _init_worker()
    assert _MODELS is not None
    return _MODELS.read_jpeg(data)


def _judge(challenge: str, jpegs: list[bytes]) -> Liveness:
    """A challenge window's verdict; the 68-point model loads with the first window."""
    global _LANDMARKS
    if _LANDMARKS is None:
        _LANDMARKS = LandmarkModel()
    return _LANDMARKS.judge(challenge, [decode_jpeg(j) for j in jpegs])


class FaceQueueFull(Exception):
    """No room for more photos now; retry after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"face queue full, retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class FacePool:
    def __init__(self, *, workers: int = 1, capacity: int = 2000) -> None:
        self._workers = max(1, workers)
        self.capacity = capacity
        self._reserved = 0
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self.done = 0

    def __repr__(self) -> str:
        return f"FacePool(workers={self._workers}, queued={self._reserved}/{self.capacity})"

    @property
    def queued(self) -> int:
        return self._reserved

    def retry_after_s(self) -> int:
        """Roughly how long until a tenth of the queue has drained."""
        backlog = max(1, self.capacity // 10) * SECONDS_PER_PHOTO / self._workers
        return max(1, round(backlog))

    def reserve(self, count: int) -> None:
        """Hold ``count`` places, each released by one :meth:`read`; raises FaceQueueFull."""
        if count and self._reserved + count > self.capacity:
            raise FaceQueueFull(self.retry_after_s())
        self._reserved += count

    def force_reserve(self, count: int) -> None:
        """Hold places even beyond capacity: work already recorded (a restart's pending
        checks, a snapshot an officer waits for) is never refused."""
        self._reserved += count

    def release(self, count: int = 1) -> None:
        self._reserved = max(0, self._reserved - count)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._executor

    async def read(self, data: bytes) -> FaceReading:
        """Read one photo in a worker; the caller reserved its place (released here)."""
        try:
            if self._closed:
                raise RuntimeError("the face pool is closed")
            loop = asyncio.get_running_loop()
            reading = await loop.run_in_executor(self._pool(), _read, data)
            self.done += 1
            return reading
        finally:
            self.release()

    async def judge(self, challenge: str, jpegs: list[bytes]) -> Liveness:
        """Judge one challenge window in a worker. It holds one place like a photo (never
        refused: the officer waits for it), released here."""
        self.force_reserve(1)
        try:
            if self._closed:
                raise RuntimeError("the face pool is closed")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool(), _judge, challenge, jpegs)
        finally:
            self.release()

    async def close(self) -> None:
        """Idempotent; waiting photos are cancelled (their check-ins stay ``pending``)."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
