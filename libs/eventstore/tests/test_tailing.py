"""A log tail stops when asked, even where Python 3.11's `wait_for` drops the cancellation."""

from __future__ import annotations

import asyncio

import pytest

from corral_eventstore.tailing import LogTail
from corral_web.asyncio_compat import ORIGINAL_WAIT_FOR


async def test_a_tail_stopped_as_it_is_notified_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The api notifies its tails on a last write and stops them in the same loop iteration; with 3.11's
    `wait_for` that cancellation was dropped and the api's shutdown waited forever (CI, twice)."""
    monkeypatch.setattr(asyncio, "wait_for", ORIGINAL_WAIT_FOR)
    steps: list[int] = []

    async def step() -> bool:
        steps.append(1)
        return False

    tail = LogTail("test-tail", step, poll_interval=30)
    tail.start()
    await asyncio.sleep(0.01)
    assert steps, "the tail never ran its step"
    async with asyncio.timeout(5) as guard:
        tail.notify()
        await tail.stop()
    assert not guard.expired(), "stop() returned only when its caller was cancelled"


async def test_a_notified_tail_runs_its_step_again() -> None:
    ran = asyncio.Event()
    count: list[int] = []

    async def step() -> bool:
        count.append(1)
        if len(count) >= 2:
            ran.set()
        return False

    tail = LogTail("test-tail", step, poll_interval=30)
    tail.start()
    try:
        await asyncio.sleep(0.01)
        tail.notify()
        await asyncio.wait_for(ran.wait(), 5)
    finally:
        await tail.stop()
