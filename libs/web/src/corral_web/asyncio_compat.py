"""`asyncio.wait_for` as Python 3.12 has it, for the Python 3.11 that Corral runs on.

Python 3.11's `wait_for` drops a cancellation that lands in the loop iteration where the awaited thing
completes: it returns the result instead of raising `CancelledError` (CPython gh-86296, fixed in 3.12 by
building `wait_for` on `asyncio.timeout`). A task that loops over such waits then never stops, and whatever
awaits it after cancelling it waits forever. nats-py waits for every request and publish acknowledgement with
`wait_for`, so any Corral loop that talks to NATS could hang a shutdown, or a build's log pump.

`install()` replaces `asyncio.wait_for` with the 3.12 implementation in the running process; every service
calls it at start, and the test plugin calls it for in-process tests. On 3.12 and later it does nothing.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

ORIGINAL_WAIT_FOR = asyncio.wait_for


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:
    """CPython 3.12's `asyncio.wait_for`."""
    if timeout is not None and timeout <= 0:
        future = asyncio.ensure_future(fut)
        if future.done():
            return future.result()
        await asyncio.tasks._cancel_and_wait(future, loop=asyncio.get_running_loop())  # type: ignore[attr-defined]
        try:
            return future.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


def install() -> None:
    if sys.version_info >= (3, 12):
        return
    patched: Any = wait_for
    asyncio.wait_for = patched
    asyncio.tasks.wait_for = patched
