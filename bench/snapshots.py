"""Snapshots: create → started from a large snapshot image (the first time on a runner, which fetches its
copy first, and when the runner holds it) beside the default snapshot; and snapshot build times: a cold
pip build, a rebuild on a warm build cache, and the same `buildInfo` again (reused by content hash)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp

from corral_runner.adapters.docker_engine import DockerEngine
from corral_runner.adapters.snapshot_source import SnapshotSource
from corral_stack.stack import Stack

from .figures import Options, Series

LARGE_MB = 512
"""Size of the incompressible file the large snapshot adds to the default image."""


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(stack: Stack, options: Options) -> list[Series]:
    tag = os.urandom(4).hex()
    creates = max(3, options.creates // 2)
    default = Series("create -> started, default snapshot")
    large_first = Series(f"create -> started, {LARGE_MB} MB snapshot, runner lacks it (same engine: a tag)",
                         unit="s")
    ship = Series(f"copy a {LARGE_MB} MB snapshot to a runner (save -> HTTP -> load)", unit="s")
    large = Series(f"create -> started, {LARGE_MB} MB snapshot, runner holds it")
    large.floor = default
    cold = Series("snapshot build: pip install six, cold", unit="s")
    warm = Series("snapshot build: same steps + 1, warm build cache", unit="s")
    reused = Series("snapshot build: identical buildInfo (reused)")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_api_key}"}) as http:
        api = stack.api_url
        base = f"FROM {stack.sandbox_image}\nLABEL corral.bench={tag}\n"
        start = time.perf_counter()
        large_snapshot = await _snapshot(http, api, f"large-{tag}",
                                         base + f"RUN head -c {LARGE_MB}M /dev/urandom > /opt/large.bin\n")
        print(f"  built the {LARGE_MB} MB snapshot in {time.perf_counter() - start:.1f}s", flush=True)
        engine = DockerEngine(stack.docker_url)
        try:  # what a runner on another Docker host pays: the copy through the snapshot manager
            source = SnapshotSource(engine, manager_url=stack.snapshot_manager_url, token=stack.internal_token,
                                    mode="ship")
            start = time.perf_counter()
            await source.fetch(large_snapshot["ref"], f"corral-runner-bench-{tag}/{large_snapshot['ref']}")
            ship.add(time.perf_counter() - start)
        finally:
            engine.close()
        for round_ in range(creates + 1):
            start = time.perf_counter()
            sandbox = await _create(http, api, {"snapshot": f"large-{tag}"})
            (large_first.add(ms(start) / 1000) if round_ == 0 else large.add(ms(start)))
            await _delete(http, api, sandbox)
            start = time.perf_counter()
            sandbox = await _create(http, api, {})
            default.add(ms(start))
            await _delete(http, api, sandbox)
        pip = base + "RUN python -m pip install --no-cache-dir six==1.16.0\n"
        start = time.perf_counter()
        await _snapshot(http, api, f"pip-{tag}", pip)
        cold.add(ms(start) / 1000)
        start = time.perf_counter()
        await _snapshot(http, api, f"pip2-{tag}", pip + "RUN echo second > /opt/second\n")
        warm.add(ms(start) / 1000)
        for _ in range(creates):
            start = time.perf_counter()
            await _snapshot(http, api, f"again-{tag}-{os.urandom(3).hex()}", pip)
            reused.add(ms(start))
    return [default, large_first, ship, large, cold, warm, reused]


async def _snapshot(http: aiohttp.ClientSession, api: str, name: str, dockerfile: str) -> dict[str, Any]:
    async with http.post(f"{api}/snapshots", json={"name": name, "buildInfo": {"dockerfileContent": dockerfile}}) as r:
        body = await r.json()
        assert r.status == 200, body
    while body["state"] not in ("active", "error", "build_failed"):
        await asyncio.sleep(0.05)
        async with http.get(f"{api}/snapshots/{body['id']}") as r:
            body = await r.json()
    assert body["state"] == "active", body
    return body  # type: ignore[no-any-return]


async def _create(http: aiohttp.ClientSession, api: str, body: dict[str, Any]) -> str:
    async with http.post(f"{api}/sandbox", json=body) as response:
        sandbox = await response.json()
        assert response.status == 200, sandbox
    while sandbox["state"] != "started":  # the create call answers after 30 s at most
        assert sandbox["state"] in ("creating", "pulling_snapshot"), sandbox
        await asyncio.sleep(0.05)
        async with http.get(f"{api}/sandbox/{sandbox['id']}") as response:
            sandbox = await response.json()
    return str(sandbox["id"])


async def _delete(http: aiohttp.ClientSession, api: str, sandbox_id: str) -> None:
    async with http.delete(f"{api}/sandbox/{sandbox_id}") as response:
        assert response.status == 200
