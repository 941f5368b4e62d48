"""A consumer's background task: started once, woken on news, stopped gracefully."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("corral_messaging")


class BackgroundLoop:
    """Runs one coroutine function as a task; `stop()` asks it to finish and waits for it.

    The loop reads `stopping` between messages and sleeps with `nap()`, which `wake()` (new
    messages, a reconnect) and `stop()` cut short.
    """

    def __init__(self, name: str):
        self.name = name
        self.stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, run: Callable[[], Awaitable[None]]) -> None:
        if self.running:
            return
        self.stopping = False
        self._task = asyncio.create_task(self._guard(run), name=self.name)

    async def _guard(self, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: loop crashed", self.name)
            raise

    async def stop(self) -> None:
        self.stopping = True
        self.wake()
        if self._task is asyncio.current_task():
            return  # stopped from its own handler: the loop ends once that handler returns
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except Exception:
                pass  # already logged by _guard

    @property
    def woken(self) -> asyncio.Event:
        """Set by `wake()` and `stop()` until the next `clear()`."""
        return self._wake

    def wake(self) -> None:
        self._wake.set()

    def clear(self) -> None:
        """Forget earlier wake-ups: call before looking for work, then `nap()` if there was none."""
        self._wake.clear()

    async def nap(self, timeout: float | None) -> None:
        """Sleep until woken, or `timeout` seconds (None: until woken)."""
        if timeout is not None and timeout <= 0:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass
