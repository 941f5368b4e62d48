"""Waiting, within a deadline, until a consumer has caught up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_INTERVAL = 0.01


async def poll_until(condition: Callable[[], Awaitable[bool]], *, timeout: float, what: str) -> None:
    """Await `condition()` until it holds; `TimeoutError` naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = POLL_INTERVAL
    while not await condition():
        if loop.time() >= deadline:
            raise TimeoutError(f"{what} not idle within {timeout}s")
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
        interval = min(interval * 1.5, 0.1)
