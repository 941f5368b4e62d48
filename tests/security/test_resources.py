"""Resource attacks: a fork bomb, a memory bomb, filling the disk and hogging the CPU are each bounded to
the sandbox that runs them; the sandbox's agent survives, the host and the control plane stay
responsive, and an out-of-memory kill is reported on the sandbox."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator

import docker
import httpx
import pytest

from corral_runner.adapters.cgroup_counters import read_counters
from corral_runner.domain.isolation import PIDS_LIMIT
from corral_testing.waiting import wait_for

from .conftest import Api
from .probes import last_json


def container(sandbox_id: str) -> tuple[int, str]:
    client = docker.from_env()
    try:
        found = client.containers.get(f"corral-{sandbox_id}")
        return int(found.attrs["State"]["Pid"]), str(found.id)
    finally:
        client.close()


@pytest.fixture
async def victim(api: Api) -> AsyncIterator[str]:
    """A fresh 1-CPU, 1-GiB sandbox for one attack, destroyed afterwards."""
    sandbox = await api.create(cpu=1, memory=1, disk=1, labels={"corral.security": "resources"})
    try:
        yield sandbox["id"]
    finally:
        await api.delete(sandbox["id"])


FORK_BOMB = r"""
import json, os, time
children, error = [], None
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as e:
    error = e.errno
time.sleep(%s)  # hold the limit while the host is checked
for pid in children:
    os.kill(pid, 9)
for pid in children:
    os.waitpid(pid, 0)
print(json.dumps({"forked": len(children), "errno": error}))
"""


async def test_a_fork_bomb_hits_the_pids_limit_and_the_host_is_fine(api: Api, victim: str) -> None:
    bomb = asyncio.create_task(api.python(victim, FORK_BOMB % 3))
    pid, container_id = container(victim)

    def at_limit() -> bool:
        return _pids(container_id) >= PIDS_LIMIT - 5
    await wait_for(at_limit, timeout=60, interval=0.1, message="the fork bomb never reached the pids limit")
    assert subprocess.run(["true"]).returncode == 0  # the host still forks
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{api.stack.api_url}/health")).status_code == 200  # the control plane answers
    code, output = await bomb
    result = last_json(output)
    assert result["errno"] == 11 and result["forked"] < PIDS_LIMIT, result  # EAGAIN at the limit
    assert await api.sh(victim, "echo alive") == (0, "alive\n")  # the agent survived


def _pids(container_id: str) -> int:
    for path in (f"/sys/fs/cgroup/pids/docker/{container_id}/pids.current",
                 f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/pids.current",
                 f"/sys/fs/cgroup/docker/{container_id}/pids.current"):
        try:
            with open(path) as file:
                return int(file.read())
        except OSError:
            continue
    raise AssertionError("cannot read the sandbox's pids cgroup")


MEMORY_BOMB = r"""
chunks = []
while True:
    chunks.append(b"x" * (64 * 1024 * 1024))
"""


async def test_a_memory_bomb_is_killed_inside_the_sandbox_and_reported(api: Api, victim: str) -> None:
    code, output = await api.python(victim, r"""
import json, glob
agent = [p.split("/")[2] for p in glob.glob("/proc/[0-9]*/cmdline") if b"corral-agent" in open(p, "rb").read()]
print(json.dumps({"agent": open("/proc/%s/oom_score_adj" % min(agent, key=int)).read().strip(),
                  "child": open("/proc/self/oom_score_adj").read().strip()}))
""")
    assert last_json(output) == {"agent": "0", "child": "500"}, output  # the bomb dies before the agent
    before = await api.get(victim)
    code, output = await api.python(victim, MEMORY_BOMB)
    assert code == 137 or code == -9, (code, output[-300:])  # SIGKILL from the kernel's OOM killer
    assert await api.sh(victim, "echo alive") == (0, "alive\n")  # the agent and the container survived

    async def reported() -> dict:
        sandbox = await api.get(victim)
        return sandbox if sandbox["oomKills"] > before["oomKills"] else {}
    sandbox = await wait_for(reported, timeout=30, interval=0.2, message="the OOM kill was never reported")
    assert sandbox["state"] == "started" and sandbox["lastOomAt"], sandbox
    events = [e for e in await api.events(victim) if e["type"] == "SandboxOomKilled"]
    assert events and events[-1]["data"]["kills"] >= 1, events


async def test_the_run_directory_cannot_fill_the_hosts_disk(api: Api, victim: str) -> None:
    """/run/corral lives on the host: it is a small tmpfs of its own, charged to the sandbox."""
    code, output = await api.sh(victim, "dd if=/dev/zero of=/run/corral/fill bs=1M count=512 2>&1; "
                                        "du -sm /run/corral | cut -f1; rm -f /run/corral/fill")
    assert "No space left on device" in output, output
    assert int(output.split()[-1]) <= 64, output
    assert await api.sh(victim, "echo alive") == (0, "alive\n")


async def test_filling_the_disk_is_bounded(api: Api, victim: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        health = (await client.get(f"{api.stack.api_url}/health")).json()
    if health["diskLimits"] != "enforced":
        pytest.skip(f"this Docker engine cannot bound a container's disk (health: diskLimits={health['diskLimits']})")
    code, output = await api.sh(victim, "dd if=/dev/zero of=$HOME/fill bs=1M count=1400 2>&1; "
                                        "du -sm $HOME/fill | cut -f1; rm -f $HOME/fill", timeout=120)
    assert "No space left on device" in output or "Disk quota exceeded" in output, output
    assert int(output.split()[-1]) <= 1024, output
    assert await api.sh(victim, "echo alive") == (0, "alive\n")


async def test_a_cpu_hog_is_held_to_its_quota_and_the_control_plane_stays_responsive(
        api: Api, victim: str, sandboxes: dict[str, str]) -> None:
    hog = asyncio.create_task(api.toolbox("POST", victim, "process/execute", json={
        "command": "for i in 1 2 3 4; do python3 -c 'while True: pass' & done; wait", "timeout": 12}))
    pid, container_id = container(victim)

    def usage() -> int:
        counters = read_counters(pid, container_id)
        assert counters is not None
        return counters.cpu_usage_ns

    baseline = usage()
    # The hog is running once it has burnt a quarter of a CPU-second; on a busy machine that takes longer.
    await wait_for(lambda: usage() - baseline > 250_000_000, timeout=10, message="the hog never ran")
    start, at = usage(), time.monotonic()
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(5):
            began = time.monotonic()
            assert (await client.get(f"{api.stack.api_url}/health")).status_code == 200
            assert await api.sh(sandboxes["daytona"], "echo ok") == (0, "ok\n")
            assert time.monotonic() - began < 3.0  # generous: the machine is shared
    cpus = (usage() - start) / (time.monotonic() - at) / 1e9
    assert cpus < 1.3, cpus  # 4 spinning processes, one CPU's worth
    assert (await hog).status_code == 408  # killed, whole process group, at its timeout
