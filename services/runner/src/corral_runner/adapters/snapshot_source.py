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
    def __init__(self, engine: DockerEngine, *, manager_url: str, token: str, registry: str = "",
                 mode: str = "auto"):
        self._engine = engine
        self._url = manager_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {token}"}
        self._registry = registry
        self._mode = mode
        """`auto`: a runner on the snapshot manager's own Docker engine just tags the image; `ship`: always copy."""

    async def _same_engine(self) -> bool:
        if self._mode != "auto":
            return False
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.get(f"{self._url}/health") as response:
                    theirs = (await response.json()).get("engine", "")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        return bool(theirs) and theirs == await self._engine.engine_id()

    async def fetch(self, ref: str, local: str) -> str:
        """Make `local` (this runner's tag of snapshot `ref`) exist; returns how it came (`registry`, `shipped`)."""
        if await self._same_engine() and await self._engine.image_present(ref):
            await self._engine.tag(ref, local)
            return "tagged (same Docker engine as the snapshot manager)"
        if self._registry:
            remote = f"{self._registry}/{ref}"
            await self._engine.pull(remote)
            await self._engine.tag(remote, local)
            return "pulled from the registry"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{self._url}/images", params={"ref": ref}, headers=self._auth) as response:
                if response.status != 200:
                    raise EngineError(f"the snapshot manager cannot ship {ref}: {response.status} "
                                      f"{(await response.text())[:300]}")
                await self._engine.load(response.content.iter_chunked(1024 * 1024))
        await self._engine.tag(ref, local)
        return "shipped from the snapshot manager"

    async def hand_over(self, ref: str) -> None:
        """Give a snapshot captured here to the snapshot manager (and the registry, when configured)."""
        if await self._same_engine():
            return  # it already has it
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
