"""Where a running service is, on request: `kill -USR1 <pid>` writes every thread's stack and every asyncio
task's await chain to the service's stderr (its log), without stopping it.

Threads come from `faulthandler`, which answers even when the event loop itself is blocked; the tasks follow
when the loop gets to run. This is how a hang is read after the fact: the test harness signals a stack's
services when a test fails, and their logs keep the answer.
"""

from __future__ import annotations

import asyncio
import faulthandler
import signal
import sys
from collections.abc import Iterator

DUMP_SIGNAL = signal.SIGUSR1


def await_chain(coro: object, depth_limit: int = 40) -> Iterator[str]:
    """Where a coroutine waits, following `await` into the coroutines (and async generators) it awaits."""
    depth = 0
    while coro is not None and depth < depth_limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            yield f"awaiting {coro!r}"[:300]
            return
        yield f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
        depth += 1


def format_tasks(loop: asyncio.AbstractEventLoop, title: str) -> str:
    tasks = asyncio.all_tasks(loop)
    lines = [f"~~~~~~~~ {len(tasks)} asyncio tasks {title} ~~~~~~~~"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        lines.append(f"-- {task.get_name()}:")
        lines.extend(f"     {line}" for line in await_chain(task.get_coro()))
    return "\n".join(lines)


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Answer `DUMP_SIGNAL` in this process (call once, from the loop's thread)."""
    loop.add_signal_handler(DUMP_SIGNAL, lambda: print(format_tasks(loop, "pending"), file=sys.stderr, flush=True))
    # After the loop's handler, so faulthandler chains to it: threads first (even if the loop is stuck).
    faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=True)
