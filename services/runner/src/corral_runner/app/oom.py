"""Out-of-memory kills inside sandboxes: noticed on the host, reported as facts.

A process that exceeds its sandbox's memory is killed by the kernel inside the sandbox's memory
cgroup only (the agent asks the kernel to prefer the processes it starts over itself); the container
and its agent keep running. The kernel counts those kills per cgroup; this watch reads the counter of
every running sandbox and reports each increase with the run's running total, so repeating a report
(after a runner restart, say) records nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corral_contracts import guard as gd

from ..domain.reconcile import Observed
from .ports import FactSink

ReadKills = Callable[[int, str], "int | None"]


class OomWatch:
    def __init__(self, *, runner_id: str, report: FactSink, read: ReadKills):
        self.runner_id = runner_id
        self._report = report
        self._read = read
        self.containers: list[Observed] = []
        """The runner's containers as last listed (kept current by the runner's periodic sweep)."""
        self._reported: dict[tuple[str, str], int] = {}

    async def sweep(self) -> int:
        """Report every sandbox whose kill count grew; returns how many were reported."""
        reported = 0
        live = set()
        for container in self.containers:
            if not container.running or not container.pid:
                continue
            key = (container.sandbox_id, container.started_at)
            live.add(key)
            kills = await asyncio.to_thread(self._read, container.pid, container.container_id)
            if not kills or kills <= self._reported.get(key, 0):
                continue
            fact = gd.SandboxContainerOomKilled(runner_id=self.runner_id, sandbox_id=container.sandbox_id,
                                                run=container.started_at, oom_kills=kills)
            await self._report(fact, msg_id=f"{self.runner_id}:oom:{container.sandbox_id}:{container.started_at}:{kills}")
            self._reported[key] = kills
            reported += 1
        for key in [k for k in self._reported if k not in live]:
            del self._reported[key]
        return reported
