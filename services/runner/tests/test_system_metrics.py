"""Sandbox metrics: cgroup v1 / v2 counters, the engine's stats document, and the CPU window."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corral_runner.adapters.cgroup_counters import Counters, read_counters
from corral_runner.adapters.docker_stats import sample_from_counters, sample_from_stats
from corral_runner.app.system import SandboxMetrics, SandboxNotRunning, StatsSample, metrics_body

CID = "c0ffee" * 10
INFO = {"Id": CID, "HostConfig": {"NanoCpus": 2_000_000_000, "Memory": 1024**3},
        "Config": {"Labels": {"corral.disk_bytes": str(3 * 1024**3)}}}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v1_and_hybrid(tmp_path: Path) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cg"
    write(proc / "42" / "cgroup", f"4:memory:/docker/{CID}\n2:cpuacct:/docker/{CID}\n1:cpu:/docker/{CID}\n"
                                  f"0::/docker/{CID}\n")
    write(root / "memory" / "docker" / CID / "memory.usage_in_bytes", "300\n")
    write(root / "memory" / "docker" / CID / "memory.stat", "cache 80\ntotal_cache 90\ntotal_inactive_file 50\n")
    write(root / "cpuacct" / "docker" / CID / "cpuacct.usage", "123456789\n")
    assert read_counters(42, CID, proc=str(proc), root=str(root)) == Counters(123456789, 300, 50, 90)
    assert read_counters(42, "another-container", proc=str(proc), root=str(root)) is None
    assert read_counters(43, CID, proc=str(proc), root=str(root)) is None


def test_cgroup_v2(tmp_path: Path) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cg"
    group = root / "system.slice" / f"docker-{CID}.scope"
    write(proc / "7" / "cgroup", f"0::/system.slice/docker-{CID}.scope\n")
    write(root / "cgroup.controllers", "cpu memory pids\n")
    write(group / "memory.current", "4096\n")
    write(group / "memory.stat", "anon 1000\nfile 2048\ninactive_file 1024\n")
    write(group / "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    assert read_counters(7, CID, proc=str(proc), root=str(root)) == Counters(1_500_000, 4096, 1024, 2048)


def test_samples_from_counters_and_from_engine_stats() -> None:
    sample = sample_from_counters(INFO, Counters(10, 300, 50, 90), 1000.0, 777)
    assert (sample.cpu_limit, sample.mem_used, sample.mem_cache, sample.mem_limit, sample.disk_used,
            sample.disk_limit) == (2.0, 250, 90, 1024**3, 777, 3 * 1024**3)
    v2 = {"read": "2024-05-01T10:00:00.123456789Z", "cpu_stats": {"cpu_usage": {"total_usage": 5}},
          "memory_stats": {"usage": 500, "limit": 2048, "stats": {"inactive_file": 100, "file": 300}}}
    sample = sample_from_stats({"Id": CID, "HostConfig": {}}, v2, 0)
    assert (sample.cpu_usage_ns, sample.mem_used, sample.mem_cache, sample.mem_limit, sample.disk_limit) == (
        5, 400, 300, 2048, None)
    assert abs(sample.read_at - 1714557600.123457) < 1e-3


def sample(at: float, cpu_ns: int, mem: int = 100) -> StatsSample:
    return StatsSample(read_at=at, cpu_usage_ns=cpu_ns, cpu_limit=2.0, mem_used=mem, mem_cache=5, mem_limit=1000,
                       disk_used=10, disk_limit=100)


def test_cpu_is_a_share_of_the_allowance() -> None:
    body = metrics_body(sample(100.0, 0), sample(100.5, 500_000_000))  # one CPU of two, busy for half a second
    assert body["cpuUsedPct"] == 50.0 and body["cpuCount"] == 2
    assert (body["memUsed"], body["memTotal"], body["diskTotal"], body["diskFree"]) == (100, 1000, 100, 90)
    assert body["timestamp"].startswith("1970-01-01T00:01:40.5") and body["timestampUnix"] == 100
    no_limit = StatsSample(read_at=1.0, cpu_usage_ns=0, cpu_limit=1.0, mem_used=0, mem_cache=0, mem_limit=0,
                           disk_used=0, disk_limit=None)
    assert "diskTotal" not in metrics_body(no_limit, no_limit)


class FakeStats:
    def __init__(self, samples: list[StatsSample | None]):
        self.samples = samples
        self.calls: list[bool] = []

    async def sample(self, sandbox_id: str, *, with_disk: bool) -> StatsSample | None:
        self.calls.append(with_disk)
        return self.samples.pop(0)


async def test_a_window_is_measured_when_there_is_no_recent_reading() -> None:
    now = time.time()
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    stats = FakeStats([sample(now - 2.25, 0), sample(now - 2.0, 250_000_000), sample(now, 2_250_000_000)])
    metrics = SandboxMetrics(stats, pause=pause)
    first = await metrics.latest("s")
    assert first["cpuUsedPct"] == 50.0 and pauses == [0.25] and stats.calls == [False, True]
    second = await metrics.latest("s")  # the previous reading is recent: measured against it, no wait
    assert second["cpuUsedPct"] == 50.0 and pauses == [0.25] and stats.calls == [False, True, True]
    stats.samples.append(None)
    with pytest.raises(SandboxNotRunning):
        await metrics.latest("s")
