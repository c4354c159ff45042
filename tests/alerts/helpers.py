"""Helpers shared by the workflow tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, limit_s: float = 30.0
) -> None:
    """Wait until ``check()`` is true. The timeout only guards against a hang on a loaded
    machine; the tests move time with the fake clock, never by sleeping."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
