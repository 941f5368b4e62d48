"""When a test is about to hit pytest-timeout, print where every asyncio task of the running loops waits.

pytest-timeout dumps the threads' stacks, which for a hung coroutine test only shows an idle event loop in
`select()`. Shortly before the timeout fires, this prints each pending task's coroutine stack into the
test's captured output, so a hang seen once in CI says where it was.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator

import pytest

from corral_observability.stack_dumps import format_tasks

MARGIN = 10.0
"""Seconds before the timeout at which the tasks are printed."""


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    try:
        return float(item.config.getini("timeout") or 0)
    except ValueError:
        return 0.0


def _dump_tasks(loop: asyncio.AbstractEventLoop) -> None:
    print("\n" + format_tasks(loop, "pending near the timeout"), file=sys.stdout)


def _report_pending_tasks() -> None:
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for loop in loops:
        if loop.is_running() and not loop.is_closed():
            loop.call_soon_threadsafe(_dump_tasks, loop)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timeout = _timeout_of(item)
    timer = None
    if timeout > MARGIN * 2:
        timer = threading.Timer(timeout - MARGIN, _report_pending_tasks)
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
