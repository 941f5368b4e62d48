"""SSH through the ssh-gateway with the real OpenSSH client, beside docker-py doing the same in the same run.

- `ssh host true`: the whole client run, TCP connect to exit (key exchange, the token checked by the api
  and recorded, a process started in the sandbox), floor: docker-py `exec_run` of `true`.
- `ssh host echo hi` to first output: client start to its first stdout byte.
- `scp` of 100 MiB up and down (MB/s, medians over a few runs), floors: docker-py `put_archive` and
  `get_archive` of the same file.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import aiohttp
import docker

from corral_stack.stack import Stack
from corral_testing.openssh import ensure_openssh

from .figures import Options, Series

IMAGE = "corral/sandbox:default"
SIZE = 100 * 1024 * 1024
TRANSFERS = 3


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def mb_per_s(start: float, size: int = SIZE) -> float:
    return size / 1e6 / (time.perf_counter() - start)


def _options(known_hosts: Path) -> list[str]:
    return ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "LogLevel=ERROR", "-o", "ControlMaster=no"]


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")


def _first_output_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    first = process.stdout.read(1)
    elapsed = ms(start)
    process.wait(60)
    assert first == b"h", f"unexpected output {first!r}"
    return elapsed


def _tar_of(path: Path, name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(path, arcname=name)
    return buffer.getvalue()


async def run(stack: Stack, options: Options) -> list[Series]:
    ensure_openssh()
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    client = docker.DockerClient(base_url=stack.docker_url)
    connect = Series("ssh host true (connect to exit)")
    connect.floor = Series("docker-py exec true")
    first = Series("ssh host 'echo hi' to first output")
    upload = Series("scp 100 MiB up", unit="MB/s")
    upload.floor = Series("docker-py put_archive 100 MiB", unit="MB/s")
    download = Series("scp 100 MiB down", unit="MB/s")
    download.floor = Series("docker-py get_archive 100 MiB", unit="MB/s")
    with tempfile.TemporaryDirectory(prefix="corral-bench-ssh-") as work:
        workdir = Path(work)
        known_hosts = workdir / "known_hosts"
        payload = workdir / "payload.bin"
        with open(payload, "wb") as out:
            for _ in range(SIZE // (1024 * 1024)):
                out.write(os.urandom(1024 * 1024))
        digest = hashlib.sha256(payload.read_bytes()).hexdigest()
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.post(f"{stack.api_url}/sandbox", json={"autoStopInterval": 0}) as response:
                sandbox = await response.json()
                assert response.status == 200 and sandbox["state"] == "started", sandbox
            async with http.post(f"{stack.api_url}/sandbox/{sandbox['id']}/ssh-access") as response:
                token = (await response.json())["token"]
        target = f"{token}@{stack.config.host}"
        ssh = ["ssh", *_options(known_hosts), "-p", str(stack.config.ssh_port), target]
        scp = ["scp", *_options(known_hosts), "-P", str(stack.config.ssh_port)]
        floor_container = await asyncio.to_thread(
            client.containers.run, IMAGE, ["sleep", "infinity"], detach=True, init=True, labels=options.labels,
            cap_drop=["ALL"], security_opt=["no-new-privileges:true"], mem_limit=1024**3,
            nano_cpus=1_000_000_000, pids_limit=1024)
        try:
            for _ in range(3):  # warm up: the known host, caches
                await asyncio.to_thread(_run, [*ssh, "true"])
            for _ in range(max(10, options.execs // 5)):
                start = time.perf_counter()
                await asyncio.to_thread(_run, [*ssh, "true"])
                connect.add(ms(start))
                first.add(await asyncio.to_thread(_first_output_ms, [*ssh, "echo hi"]))
                start = time.perf_counter()
                await asyncio.to_thread(floor_container.exec_run, ["true"])
                connect.floor.add(ms(start))
            archive = await asyncio.to_thread(_tar_of, payload, "payload.bin")
            for n in range(TRANSFERS):
                start = time.perf_counter()
                await asyncio.to_thread(_run, [*scp, str(payload), f"{target}:payload.bin"])
                upload.add(mb_per_s(start))
                back = workdir / f"back-{n}.bin"
                start = time.perf_counter()
                await asyncio.to_thread(_run, [*scp, f"{target}:payload.bin", str(back)])
                download.add(mb_per_s(start))
                assert hashlib.sha256(back.read_bytes()).hexdigest() == digest, "scp changed the bytes"
                back.unlink()
                start = time.perf_counter()
                await asyncio.to_thread(floor_container.put_archive, "/tmp", archive)
                upload.floor.add(mb_per_s(start))
                start = time.perf_counter()
                stream, _ = await asyncio.to_thread(floor_container.get_archive, "/tmp/payload.bin")
                await asyncio.to_thread(lambda: sum(len(chunk) for chunk in stream))
                download.floor.add(mb_per_s(start))
        finally:
            await asyncio.to_thread(floor_container.remove, force=True)
            async with aiohttp.ClientSession(headers=auth) as http:
                await http.delete(f"{stack.api_url}/sandbox/{sandbox['id']}")
            client.close()
    return [connect, first, upload, download]
