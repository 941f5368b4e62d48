"""Toolbox use cases of the sandbox itself: its environment (`POST /env`) and its resource use
(`GET /system/metrics`), the latter measured from the host, never trusted from inside the sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import datetime, timezone
from typing import Any, Protocol

import msgspec

from ..adapters.agent_link import AgentLink
from .toolbox import AgentError, Toolbox


class EnvUpdate(msgspec.Struct, kw_only=True, rename="camel"):
    set: dict[str, str] | None = None
    unset: list[str] | None = None
    """Removed before `set` is applied: a name in both ends up set."""
    unset_value_prefix: str | None = None
    """Also remove every variable whose value starts with this, unless `set` names it."""


_PRINT_ENV = "import json, os, sys; sys.stdout.write(json.dumps(dict(os.environ)))"


async def update_env(agent: AgentLink, toolbox: Toolbox, sandbox_id: str, update: EnvUpdate) -> dict[str, str]:
    """Change the environment the agent gives every process started afterwards (exec, sessions, PTYs)."""
    changes = update.set or {}
    removals = [name for name in update.unset or [] if name not in changes]
    if update.unset_value_prefix:
        current = await _environment(toolbox, sandbox_id)
        removals += [name for name, value in current.items()
                     if value.startswith(update.unset_value_prefix) and name not in changes]
    async with aclosing(agent.call(sandbox_id, {"op": "env", "set": changes, "unset": removals})) as frames:
        async for frame in frames:
            if frame.get("type") == "error":
                raise AgentError(str(frame.get("code", "AGENT_ERROR")), str(frame.get("message", "")))
            if frame.get("type") == "result":
                return {}
    raise AgentError("AGENT_DISCONNECTED", "the sandbox agent closed the connection before answering")


async def _environment(toolbox: Toolbox, sandbox_id: str) -> dict[str, str]:
    result = await toolbox.exec(sandbox_id, {"argv": ["python3", "-I", "-S", "-c", _PRINT_ENV], "timeout": 30})
    try:
        return msgspec.json.decode(result.output, type=dict[str, str])
    except msgspec.DecodeError:
        tail = result.output.decode(errors="replace")[-200:]
        raise AgentError("EXEC_FAILED", f"could not read the sandbox environment: {tail}") from None


class StatsSample(msgspec.Struct, frozen=True, kw_only=True):
    """One reading of a running sandbox container, as the host's engine reports it."""

    read_at: float
    """Seconds (epoch) when the engine read the counters."""
    cpu_usage_ns: int
    """CPU time used by the container since it started."""
    cpu_limit: float
    """CPUs the sandbox may use."""
    mem_used: int
    """Working set: usage minus inactive page cache (as `docker stats`)."""
    mem_cache: int
    mem_limit: int
    disk_used: int
    """Bytes in the container's writable layer."""
    disk_limit: int | None


class ContainerStats(Protocol):
    async def sample(self, sandbox_id: str, *, with_disk: bool) -> StatsSample | None: ...
    """None when the sandbox has no running container here."""


class SandboxNotRunning(Exception):
    pass


class MetricsUnavailable(Exception):
    """The engine could not be asked."""


CPU_WINDOW = 0.25
"""Seconds between two readings when there is no recent one to measure CPU use against."""
RECENT = 10.0
MIN_WINDOW = 0.05
"""A previous reading between these ages (seconds) is used as the start of the CPU window."""
KEPT_READINGS = 16


class SandboxMetrics:
    """`get_metrics_latest()`: CPU use over the last moment, memory and disk now.

    The CPU window starts at the newest earlier reading that is old enough (so frequent polling costs
    no waiting); without one, two readings are taken `CPU_WINDOW` apart.
    """

    def __init__(self, stats: ContainerStats, pause: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._stats = stats
        self._pause = pause
        self._readings: dict[str, list[StatsSample]] = {}

    async def latest(self, sandbox_id: str) -> dict[str, Any]:
        now = time.time()
        previous = next((s for s in reversed(self._readings.get(sandbox_id, []))
                         if MIN_WINDOW <= now - s.read_at <= RECENT), None)
        if previous is None:
            previous = await self._stats.sample(sandbox_id, with_disk=False)
            if previous is None:
                raise SandboxNotRunning(sandbox_id)
            await self._pause(CPU_WINDOW)
        current = await self._stats.sample(sandbox_id, with_disk=True)
        if current is None:
            self._readings.pop(sandbox_id, None)
            raise SandboxNotRunning(sandbox_id)
        self._remember(sandbox_id, current)
        return metrics_body(previous, current)

    def _remember(self, sandbox_id: str, reading: StatsSample) -> None:
        for known in list(self._readings):
            kept = [s for s in self._readings[known] if reading.read_at - s.read_at <= RECENT]
            if kept:
                self._readings[known] = kept[-KEPT_READINGS:]
            else:
                del self._readings[known]
        self._readings.setdefault(sandbox_id, []).append(reading)


def metrics_body(previous: StatsSample, current: StatsSample) -> dict[str, Any]:
    """The `SystemMetrics` body: CPU as a percentage of the sandbox's CPU allowance over the window."""
    window_ns = (current.read_at - previous.read_at) * 1e9
    used_ns = max(0, current.cpu_usage_ns - previous.cpu_usage_ns)
    cpu_pct = 0.0 if window_ns <= 0 or current.cpu_limit <= 0 else used_ns / window_ns / current.cpu_limit * 100
    body: dict[str, Any] = {
        "cpuCount": max(1, round(current.cpu_limit)),
        "cpuUsedPct": round(min(100.0, cpu_pct), 2),
        "memTotal": current.mem_limit,
        "memUsed": current.mem_used,
        "memCache": current.mem_cache,
        "diskUsed": current.disk_used,
        "timestamp": datetime.fromtimestamp(current.read_at, timezone.utc).isoformat(),
        "timestampUnix": int(current.read_at),
    }
    if current.disk_limit is not None:
        body["diskTotal"] = current.disk_limit
        body["diskFree"] = max(0, current.disk_limit - current.disk_used)
    return body
