"""A 1 GiB file up and down through the SDK (proxy -> runner -> agent), checked by hash, while the
runner's and the proxy's peak resident memory stay far below the file's size: nothing holds it whole.

`CORRAL_LARGE_FILE_MIB` changes the size (default 1024).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from daytona import Daytona, DaytonaConfig

from corral_stack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

MIB = 1024 * 1024
SIZE_MIB = int(os.environ.get("CORRAL_LARGE_FILE_MIB", "1024"))
GROWTH_LIMIT_MIB = 64
"""How much a service's peak RSS may grow while the file passes through it."""


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def write_random_file(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mib):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(4 * MIB):
            digest.update(block)
    return digest.hexdigest()


async def test_a_large_file_streams_both_ways_with_flat_memory(stack: Stack, tmp_path: Path) -> None:
    pids = {name: stack.services[name].pid for name in ("runner", "proxy")}
    assert all(pids.values()), pids
    source, target = tmp_path / "big.bin", tmp_path / "back.bin"
    expected = await asyncio.to_thread(write_random_file, source, SIZE_MIB)
    daytona = Daytona(DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url))
    sandbox = await asyncio.to_thread(daytona.create, timeout=120)
    try:
        await asyncio.to_thread(sandbox.fs.upload_file, b"warm-up", "warm.txt")
        assert await asyncio.to_thread(sandbox.fs.download_file, "warm.txt") == b"warm-up"
        before = {name: peak_rss_mib(pid) for name, pid in pids.items()}

        await asyncio.to_thread(sandbox.fs.upload_file, str(source), "data/big.bin", 1800)
        inside = await asyncio.to_thread(sandbox.process.exec, "sha256sum data/big.bin && stat -c %s data/big.bin",
                                         timeout=300)
        assert inside.result.split()[0] == expected and inside.result.split()[-1] == str(SIZE_MIB * MIB)
        await asyncio.to_thread(sandbox.fs.download_file, "data/big.bin", str(target), 1800)
        assert target.stat().st_size == SIZE_MIB * MIB
        assert await asyncio.to_thread(sha256_of, target) == expected

        after = {name: peak_rss_mib(pid) for name, pid in pids.items()}
        growth = {name: round(after[name] - before[name], 1) for name in pids}
        print(f"\n{SIZE_MIB} MiB up and down; peak RSS before {before} MiB, after {after} MiB, growth {growth} MiB")
        assert all(g < GROWTH_LIMIT_MIB for g in growth.values()), growth
    finally:
        await asyncio.to_thread(daytona.delete, sandbox, timeout=60)
