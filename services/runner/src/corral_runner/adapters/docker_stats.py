"""A sandbox container's resource use, measured on the host (cgroup v1, hybrid or v2 alike).

CPU and memory come from the container's cgroup files when this process can read them (fast), else
from the engine's one-shot stats (which answer at most once a second per container). Disk is the
size of the container's writable layer as the engine reports it; limits are those the container was
created with. The engine client is made on first use, in a thread: nothing connects at construction.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import datetime
from typing import Any

import docker
import docker.errors

from ..app.system import MetricsUnavailable, StatsSample
from ..domain.isolation import LABEL_DISK_BYTES, container_name
from .cgroup_counters import Counters, read_counters


class DockerStats:
    def __init__(self, base_url: str | None = None):
        self._base_url = base_url
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _docker(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                self._client = docker.DockerClient(base_url=self._base_url) if self._base_url else docker.from_env()
            return self._client

    async def sample(self, sandbox_id: str, *, with_disk: bool) -> StatsSample | None:
        return await asyncio.to_thread(self._sample, container_name(sandbox_id), with_disk)

    def _sample(self, name: str, with_disk: bool) -> StatsSample | None:
        try:
            api = self._docker().api
            info = api.inspect_container(name)
            if not info["State"].get("Running"):
                return None
            counters = read_counters(int(info["State"].get("Pid") or 0), info["Id"])
            read_at = time.time()
            stats = None if counters is not None else api.stats(info["Id"], stream=False, one_shot=True)
            disk_used = 0
            if with_disk:
                listed = api.containers(all=True, size=True, filters={"id": info["Id"]})
                disk_used = int((listed[0].get("SizeRw") or 0) if listed else 0)
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, OSError) as error:
            raise MetricsUnavailable(f"the container engine did not answer: {error}") from error
        if counters is not None:
            return sample_from_counters(info, counters, read_at, disk_used)
        return sample_from_stats(info, stats or {}, disk_used)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _limits(info: dict[str, Any]) -> tuple[float, int, int | None]:
    """(CPUs, memory bytes or 0, disk bytes or None) the container was created with."""
    host = info.get("HostConfig") or {}
    if host.get("NanoCpus"):
        cpus = float(host["NanoCpus"]) / 1e9
    elif (host.get("CpuQuota") or 0) > 0 and (host.get("CpuPeriod") or 0) > 0:
        cpus = host["CpuQuota"] / host["CpuPeriod"]
    else:
        cpus = float(os.cpu_count() or 1)
    disk = ((info.get("Config") or {}).get("Labels") or {}).get(LABEL_DISK_BYTES)
    return cpus, int(host.get("Memory") or 0), int(disk) if disk and disk.isdigit() else None


def sample_from_counters(info: dict[str, Any], counters: Counters, read_at: float, disk_used: int) -> StatsSample:
    cpus, memory, disk = _limits(info)
    return StatsSample(read_at=read_at, cpu_usage_ns=counters.cpu_usage_ns, cpu_limit=cpus,
                       mem_used=max(0, counters.mem_usage - counters.mem_inactive_file),
                       mem_cache=counters.mem_cache, mem_limit=memory or _host_memory(), disk_used=disk_used,
                       disk_limit=disk)


def sample_from_stats(info: dict[str, Any], stats: dict[str, Any], disk_used: int) -> StatsSample:
    """The engine's stats document (cgroup v1 and v2 key names) -> a sample."""
    cpus, memory, disk = _limits(info)
    mem = stats.get("memory_stats") or {}
    counters = mem.get("stats") or {}
    inactive = counters.get("total_inactive_file", counters.get("inactive_file", 0))  # v1 | v2
    cache = counters.get("cache", counters.get("file", 0))  # v1 | v2
    return StatsSample(
        read_at=_epoch(stats.get("read")),
        cpu_usage_ns=int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0),
        cpu_limit=cpus,
        mem_used=max(0, int(mem.get("usage") or 0) - int(inactive or 0)),
        mem_cache=int(cache or 0),
        mem_limit=memory or int(mem.get("limit") or 0),
        disk_used=disk_used,
        disk_limit=disk,
    )


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _epoch(stamp: str | None) -> float:
    """Docker's RFC 3339 time with nanoseconds (`2024-01-01T00:00:00.123456789Z`) -> epoch seconds."""
    if not stamp:
        return time.time()
    head, _, fraction = stamp.rstrip("Z").partition(".")
    digits = "".join(ch for ch in fraction if ch.isdigit())
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return whole + (float("0." + digits) if digits else 0.0)
