"""`asyncio.wait_for` keeps every cancellation (Python 3.11's drops one that lands as the wait completes)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from corral_web import asyncio_compat

WaitFor = Callable[[Awaitable[Any], float | None], Awaitable[Any]]


def requests_answered_at_once(wait_for: WaitFor, stop: list[bool]) -> Callable[[], Awaitable[None]]:
    """A loop of requests whose answers come at once, as a keep-alive or a sweeper talking to NATS makes (it
    also ends when `stop` is set, so a test can end it when cancelling did not)."""
    async def run() -> None:
        loop = asyncio.get_running_loop()
        while not stop:
            reply = loop.create_future()
            loop.call_soon(reply.set_result, None)
            await wait_for(reply, 5)
    return run


async def cancelled_within(wait_for: WaitFor, seconds: float) -> bool:
    stop: list[bool] = []
    task = asyncio.create_task(requests_answered_at_once(wait_for, stop)())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=seconds)
    stop.append(True)
    await asyncio.wait({task}, timeout=5)
    return bool(done) and task.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the dropped cancellation is a Python 3.11 defect")
async def test_python_311_wait_for_drops_the_cancellation() -> None:
    """The premise: with the original one, one cancel does not stop the loop."""
    assert not await cancelled_within(asyncio_compat.ORIGINAL_WAIT_FOR, 0.3)


async def test_the_installed_wait_for_keeps_it() -> None:
    asyncio_compat.install()
    assert asyncio.wait_for is asyncio_compat.wait_for or sys.version_info >= (3, 12)
    assert await cancelled_within(asyncio.wait_for, 5)


async def test_timeouts_and_results_are_as_before() -> None:
    loop = asyncio.get_running_loop()
    assert await asyncio_compat.wait_for(asyncio.sleep(0, "value"), 1) == "value"
    assert await asyncio_compat.wait_for(asyncio.sleep(0, "value"), None) == "value"
    with pytest.raises(TimeoutError):
        await asyncio_compat.wait_for(asyncio.sleep(5), 0.01)
    pending = loop.create_future()
    with pytest.raises(TimeoutError):
        await asyncio_compat.wait_for(pending, 0)
    assert pending.cancelled(), "a timed-out wait cancels what it waited for"
    done = loop.create_future()
    done.set_result(3)
    assert await asyncio_compat.wait_for(done, 0) == 3
