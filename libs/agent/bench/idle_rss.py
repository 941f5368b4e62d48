"""Measure the agent's resident memory: idle after start, and idle again after a burst of execs.

    python libs/agent/bench/idle_rss.py [--python python3] [--flags "-I -S"] [--execs 20]

Builds the zipapp, starts it on a temporary socket, reads VmRSS / VmHWM from /proc and prints one
JSON line. A measurement, not a test: the figure depends on the interpreter and its site-packages.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from contextlib import aclosing
from pathlib import Path

from corral_agent.bundle import build_zipapp
from corral_agent.client import AgentUnavailable, call, ping


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


async def wait_ready(socket_path: str, deadline_seconds: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            await ping(socket_path, timeout=1.0)
            return
        except (AgentUnavailable, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def burst(socket_path: str, execs: int) -> None:
    async def one() -> None:
        request = {"op": "exec", "command": "head -c 1000000 /dev/zero", "timeout": 60}
        async with aclosing(call(socket_path, request)) as frames:
            async for _ in frames:
                pass

    await asyncio.gather(*(one() for _ in range(execs)))


async def measure(python: str, flags: list[str], execs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="corral-rss-", dir="/tmp") as tmp:
        pyz = build_zipapp(Path(tmp) / "corral-agent.pyz")
        socket_path = f"{tmp}/agent.sock"
        command = [python, *flags, str(pyz), "--socket", socket_path, "--workdir", f"{tmp}/work"]
        proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            await wait_ready(socket_path)
            idle = status_kib(proc.pid, "VmRSS")
            await burst(socket_path, execs)
            return {
                "command": " ".join([python, *flags, "corral-agent.pyz"]),
                "idle_rss_kib": idle,
                "rss_after_burst_kib": status_kib(proc.pid, "VmRSS"),
                "peak_rss_kib": status_kib(proc.pid, "VmHWM"),
                "burst_execs": execs,
            }
        finally:
            proc.terminate()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="python3")
    parser.add_argument("--flags", default="-I -S", help="interpreter flags (default: -I -S)")
    parser.add_argument("--execs", type=int, default=20, help="concurrent execs in the burst")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.python, args.flags.split(), args.execs))))


if __name__ == "__main__":
    main()
