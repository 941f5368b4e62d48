"""File transfer through the toolbox: 100 MiB up (`files/bulk-upload`) and down (`files/bulk-download`)
through proxy -> runner -> agent, with a plain HTTP client and with the SDK, each beside the floor:
docker-py `put_archive` / `get_archive` of the same file into / out of a container, in the same run.

Figures are durations of one 100 MiB transfer; throughput = 100 MiB / duration.
"""

from __future__ import annotations

import asyncio
import os
import tarfile
import tempfile
import time
from pathlib import Path

import aiohttp
import docker
from daytona import Daytona, DaytonaConfig

from corral_stack.stack import Stack

from .figures import Options, Series

IMAGE = "corral/sandbox:default"
MIB = 1024 * 1024
SIZE = 100 * MIB
ROUNDS = 5


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(stack: Stack, options: Options) -> list[Series]:
    up = Series("files 100 MiB upload (HTTP via proxy)")
    up.floor = Series("docker-py put_archive 100 MiB")
    down = Series("files 100 MiB download (HTTP via proxy)")
    down.floor = Series("docker-py get_archive 100 MiB")
    sdk_up = Series("files 100 MiB upload_file (SDK, sync)")
    sdk_down = Series("files 100 MiB download_file (SDK, sync)")
    client = docker.DockerClient(base_url=stack.docker_url)
    daytona = Daytona(DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url))
    with tempfile.TemporaryDirectory(prefix="corral-bench-files-") as scratch:
        work = Path(scratch)
        source, archive, sink = work / "data.bin", work / "data.tar", work / "sink.bin"
        await asyncio.to_thread(_prepare, source, archive)
        sandbox = await asyncio.to_thread(daytona.create, timeout=120)
        container = await asyncio.to_thread(_floor_container, client, options.labels)
        try:
            url = f"{stack.toolbox_url}/{sandbox.id}/files"
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_api_key}"},
                                             timeout=aiohttp.ClientTimeout(total=600)) as http:
                await _upload(http, url, source)  # warm-up
                await _download(http, url, sink)
                for _ in range(ROUNDS):
                    start = time.perf_counter()
                    await _upload(http, url, source)
                    up.add(ms(start))
                    start = time.perf_counter()
                    await asyncio.to_thread(_put_archive, container, archive)
                    up.floor.add(ms(start))
                    start = time.perf_counter()
                    received = await _download(http, url, sink)
                    down.add(ms(start))
                    assert SIZE < received < SIZE + 4096, received
                    start = time.perf_counter()
                    await asyncio.to_thread(_get_archive, container, sink)
                    down.floor.add(ms(start))
                    start = time.perf_counter()
                    await asyncio.to_thread(sandbox.fs.upload_file, str(source), "bench/sdk.bin")
                    sdk_up.add(ms(start))
                    start = time.perf_counter()
                    await asyncio.to_thread(sandbox.fs.download_file, "bench/sdk.bin", str(sink))
                    sdk_down.add(ms(start))
                    assert sink.stat().st_size == SIZE
        finally:
            await asyncio.to_thread(container.remove, force=True)
            await asyncio.to_thread(daytona.delete, sandbox, timeout=60)
            client.close()
    sdk_up.floor, sdk_down.floor = up.floor, down.floor
    series = [up, down, sdk_up, sdk_down]
    for s in series:
        print(f"  {s.name}: {SIZE / MIB / (s.median / 1000):.0f} MiB/s "
              f"(floor {SIZE / MIB / (s.floor.median / 1000):.0f} MiB/s)" if s.floor else "")
    return series


def _prepare(source: Path, archive: Path) -> None:
    with source.open("wb") as out:
        for _ in range(SIZE // MIB):
            out.write(os.urandom(MIB))
    with tarfile.open(archive, "w") as tar:
        tar.add(source, arcname="data.bin")


async def _upload(http: aiohttp.ClientSession, url: str, source: Path) -> None:
    with source.open("rb") as data:
        form = aiohttp.FormData()
        form.add_field("files[0].path", "bench/http.bin")
        form.add_field("files[0].file", data, filename="bench/http.bin", content_type="application/octet-stream")
        async with http.post(f"{url}/bulk-upload", data=form) as response:
            assert response.status == 200, await response.text()


async def _download(http: aiohttp.ClientSession, url: str, sink: Path) -> int:
    """The multipart body written to disk as it arrives (like the tar stream of the floor); its size."""
    received = 0
    async with http.post(f"{url}/bulk-download", json={"paths": ["bench/http.bin"]}) as response:
        assert response.status == 200
        with sink.open("wb") as out:
            async for chunk in response.content.iter_chunked(256 * 1024):
                out.write(chunk)
                received += len(chunk)
    return received


def _floor_container(client: docker.DockerClient, labels: dict[str, str]):  # type: ignore[no-untyped-def]
    container = client.containers.create(IMAGE, command=["sleep", "infinity"], init=True, labels=labels,
                                         cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
    container.start()
    return container


def _put_archive(container, archive: Path) -> None:  # type: ignore[no-untyped-def]
    with archive.open("rb") as data:
        assert container.put_archive("/tmp", data)


def _get_archive(container, sink: Path) -> None:  # type: ignore[no-untyped-def]
    stream, _ = container.get_archive("/tmp/data.bin")
    with sink.open("wb") as out:
        for chunk in stream:
            out.write(chunk)
