"""Where a runner gets the snapshot images it lacks: the configured registry, else the snapshot manager
(`docker save` there, streamed over HTTP into `docker load` here); and where it hands a captured one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp

from ..app.ports import EngineError
from .docker_engine import DockerEngine

log = logging.getLogger(__name__)


class SnapshotSource:
    def __init__(self, engine: DockerEngine, *, manager_url: str, token: str, registry: str = ""):
        self._engine = engine
        self._url = manager_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self._registry = registry

    async def fetch(self, ref: str, local: str) -> str:
        """Make `local` (this runner's tag of snapshot `ref`) exist; returns how it came (`registry`, `shipped`)."""
        if self._registry:
            remote = f"{self._registry}/{ref}"
            await self._engine.pull(remote)
            await self._engine.tag(remote, local)
            return "registry"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{self._url}/images", params={"ref": ref}, headers=self._auth) as response:
                if response.status != 200:
                    raise EngineError(f"the snapshot manager cannot ship {ref}: {response.status} "
                                      f"{(await response.text())[:300]}")
                await self._engine.load(response.content.iter_chunked(1024 * 1024))
        await self._engine.tag(ref, local)
        return "shipped"

    async def hand_over(self, ref: str) -> None:
        """Give a snapshot captured here to the snapshot manager (and the registry, when configured)."""
        if self._registry:
            raise EngineError("pushing captured snapshots to a registry is not implemented")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)

        async def body() -> AsyncIterator[bytes]:
            async for chunk in self._engine.save(ref):
                yield chunk

        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.put(f"{self._url}/images", data=body(), headers=self._auth) as response:
                if response.status != 200:
                    raise EngineError(f"the snapshot manager did not take {ref}: {response.status} "
                                      f"{(await response.text())[:300]}")
