"""Following the notification log: run a step whenever something was recorded, or at least every
`poll_interval` (writes by another process), backing off while the step keeps failing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class LogTail:
    """`step()` processes what is new and returns True if there may be more right away."""

    def __init__(self, name: str, step: Callable[[], Awaitable[bool]], *, poll_interval: float):
        self.name = name
        self._step = step
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Something was recorded: run the step now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it. It is also told to stop, because Python 3.11's `wait_for` can drop
        the cancellation (see `corral_web.asyncio_compat`); the loop then ends at its next wait."""
        task, self._task = self._task, None
        if task:
            self._stopping = True
            self._wake.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # the caller's own cancellation still raises

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            self._wake.clear()
            try:
                while await self._step():
                    pass
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; retrying in %.1fs", self.name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            except TimeoutError:
                pass
