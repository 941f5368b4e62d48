"""Toolbox and preview traffic is activity for the lifecycle timers.

Reports go to the activity KV bucket at most once per `every` seconds per sandbox (Daytona de-duplicates
over 45 s); a long-lived connection (a WebSocket) keeps reporting while it stays open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

log = logging.getLogger(__name__)

Put = Callable[[str, bytes], Awaitable[None]]


class ActivityReporter:
    def __init__(self, put: Put, every: float = 10.0):
        self._put = put
        self._every = every
        self._last: dict[str, float] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def touch(self, sandbox_id: str) -> None:
        now = time.monotonic()
        if now - self._last.get(sandbox_id, -1e9) < self._every:
            return
        self._last[sandbox_id] = now
        task = asyncio.create_task(self._report(sandbox_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _report(self, sandbox_id: str) -> None:
        try:
            await self._put(sandbox_id, datetime.now(timezone.utc).isoformat().encode())
        except Exception as error:  # activity is best effort; the request itself must not fail
            log.warning("could not report activity of %s: %s", sandbox_id, error)
            self._last.pop(sandbox_id, None)

    async def while_open(self, sandbox_id: str) -> None:
        """Run beside a long-lived connection: report it as activity until cancelled."""
        while True:
            self._last.pop(sandbox_id, None)
            self.touch(sandbox_id)
            await asyncio.sleep(self._every)
