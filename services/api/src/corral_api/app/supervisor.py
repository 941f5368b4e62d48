"""The supervisor: a periodic sweep that keeps every sandbox moving toward what was asked.

- re-issues the command of a sandbox that sits in a transitional state (runner commands are
  idempotent, so a lost or dead-lettered command costs a delay, never a stuck sandbox);
- fails a sandbox past its state's deadline, with a reason, recoverable;
- fires the lifecycle timers from the activity the proxy, the runner and the api report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from ..domain import supervision
from ..domain.sandbox import Sandbox
from .directory import SandboxDirectory
from .sandboxes import SandboxService

log = logging.getLogger(__name__)

ActivityReader = Callable[[], Awaitable[dict[str, datetime]]]
Reissue = Callable[[Sandbox, int], Awaitable[bool]]
Backup = Callable[[Sandbox], Awaitable[None]]

SYSTEM = {"Corral-Actor": "supervisor"}


class Supervisor:
    def __init__(self, *, directory: SandboxDirectory, service: SandboxService, activity: ActivityReader,
                 reissue: Reissue, interval: float = 5.0, reissue_after: float = 20.0,
                 deadlines: dict[str, float] = supervision.DEADLINES, minute: float = 60.0,
                 backup: Backup | None = None, backup_every: float = 3600.0,
                 extra: list[Callable[[datetime], Awaitable[int]]] | None = None):
        self._directory = directory
        self._service = service
        self._activity = activity
        self._reissue = reissue
        self.interval = interval
        self._reissue_after = timedelta(seconds=reissue_after)
        self._deadlines = deadlines
        self._minute = minute
        self._backup = backup
        self._backup_every = timedelta(seconds=backup_every)
        self._backups_asked: dict[str, datetime] = {}
        self._attempts: dict[tuple[str, int], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._extra = extra or []
        """Further sweeps (snapshots and volumes), run after the sandboxes'."""
        self.sweeps = 0

    async def sweep(self, now: datetime | None = None) -> int:
        """One pass over every live sandbox; returns how many actions it took."""
        now = now or datetime.now(timezone.utc)
        await self._directory.catch_up()
        activity = await self._activity()
        actions = 0
        for sandbox in list(self._directory.sandboxes.values()):
            if sandbox.state == "destroyed":
                continue
            try:
                actions += await self._supervise(sandbox, now, activity.get(sandbox.id))
            except Exception as error:  # one sandbox's trouble must not stop the sweep
                log.warning("supervising %s failed: %s", sandbox.id, error)
        for sweep in self._extra:
            try:
                actions += await sweep(now)
            except Exception as error:
                log.warning("a storage sweep failed: %s", error)
        self.sweeps += 1
        return actions

    async def _supervise(self, sandbox: Sandbox, now: datetime, reported: datetime | None) -> int:
        failed = supervision.overdue(sandbox, now, self._deadlines)
        if failed:
            log.warning("sandbox %s: %s", sandbox.id, failed[0].reason)
            await self._service.apply(sandbox, lambda s: supervision.overdue(s, now, self._deadlines), SYSTEM)
            return 1
        if supervision.unconverged(sandbox) and now - sandbox.updated_at > self._reissue_after:
            key = (sandbox.id, sandbox.version)
            attempt = self._attempts.get(key, 0) + 1
            due = sandbox.updated_at + self._reissue_after * attempt
            if now >= due and await self._reissue(sandbox, attempt):
                self._attempts[key] = attempt
                log.info("sandbox %s still %s: command re-issued (attempt %d)", sandbox.id, sandbox.state, attempt)
                return 1
            return 0
        if supervision.timer_due(sandbox, now, reported, self._minute):
            await self._service.apply(sandbox, lambda s: supervision.timer_due(s, now, reported, self._minute), SYSTEM)
            return 1
        if self._backup and supervision.backup_due(sandbox, now, self._backup_every, self._backups_asked.get(sandbox.id)):
            self._backups_asked[sandbox.id] = now
            await self._backup(sandbox)
            return 1
        return 0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervisor sweep failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="supervisor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
