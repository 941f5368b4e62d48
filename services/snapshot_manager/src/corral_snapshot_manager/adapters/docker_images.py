"""Images and volumes on the Docker engine through docker-py; every call in a thread (the event loop never
blocks). Builds use the engine's builder with a dedicated client, closed to cancel a build past its time."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import docker
import docker.errors

from corral_images import LoadFailed, load_stream, save_stream

from ..app.ports import BuildError, StorageInUse


class DockerImages:
    def __init__(self, base_url: str | None = None, *, build_args: dict[str, str] | None = None,
                 helper_image: str = "corral/sandbox:default", labels: dict[str, str] | None = None):
        self._base_url = base_url
        self._client = self._connect()
        self._build_args = build_args or {}
        self._helper = helper_image
        self._labels = labels or {}

    def _connect(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self._base_url) if self._base_url else docker.from_env()

    async def engine_id(self) -> str:
        return str(await asyncio.to_thread(lambda: self._client.info().get("ID", "")))

    async def present(self, ref: str) -> bool:
        def present() -> bool:
            try:
                self._client.images.get(ref)
                return True
            except docker.errors.ImageNotFound:
                return False
        return await asyncio.to_thread(present)

    async def inspect(self, ref: str) -> dict[str, Any]:
        def inspect() -> dict[str, Any]:
            attrs = self._client.images.get(ref).attrs
            config = attrs.get("Config") or {}
            return {"size": int(attrs.get("Size") or 0), "entrypoint": list(config.get("Entrypoint") or []),
                    "user": config.get("User") or ""}
        return await asyncio.to_thread(inspect)

    async def build(self, dockerfile: str, tag: str, labels: dict[str, str], on_log: Callable[[str], None],
                    timeout: float) -> None:
        """Build `dockerfile` (no context beyond it) as `tag`; every output line goes to `on_log` as it comes.

        The engine's build endpoint is called over an async HTTP connection (not docker-py's blocking one), so
        a build past `timeout` is cancelled for real: closing the connection makes the engine stop it."""
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as archive:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        params = {"t": tag, "rm": "1", "forcerm": "1", "pull": "0",
                  "labels": json.dumps({**self._labels, **labels}), "buildargs": json.dumps(self._build_args)}
        failure: list[str] = []

        async def run() -> None:
            base, connector = engine_endpoint(self._base_url)
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
                async with http.post(f"{base}/build", params=params, data=context.getvalue(),
                                     headers={"Content-Type": "application/x-tar"}) as response:
                    if response.status != 200:
                        failure.append(f"the engine refused the build: {(await response.text())[:500]}")
                        return
                    async for raw in response.content:
                        try:
                            item = json.loads(raw)
                        except ValueError:
                            continue
                        if "stream" in item:
                            on_log(item["stream"])
                        elif "status" in item:
                            on_log(f"{item['status']} {item.get('progress', '')}".rstrip() + "\n")
                        if "error" in item:
                            failure.append(str(item["error"]).strip())
                            on_log(str(item["error"]).rstrip("\n") + "\n")

        try:
            await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise BuildError(f"the build did not finish within {timeout:.0f}s and was cancelled") from None
        except aiohttp.ClientError as error:
            raise BuildError(f"the build stopped: {error}") from None
        if failure:
            raise BuildError(failure[-1])

    async def probe(self, ref: str, command: list[str]) -> tuple[str, int]:
        """Run `command` in a throwaway container of `ref` (no network, the image's entrypoint bypassed)."""
        def probe() -> tuple[str, int]:
            container = self._client.containers.create(ref, command, entrypoint=[], network_disabled=True,
                                                       labels=self._labels)
            try:
                try:
                    container.start()
                except docker.errors.APIError as error:
                    return str(error.explanation or error), 127
                code = int(container.wait(timeout=120).get("StatusCode", 1))
                return container.logs(stdout=True, stderr=True).decode(errors="replace"), code
            finally:
                container.remove(force=True)
        return await asyncio.to_thread(probe)

    async def pull(self, image: str) -> None:
        def pull() -> None:
            try:
                self._client.images.pull(image)
            except docker.errors.APIError as error:
                raise BuildError(f"pulling {image} failed: {error.explanation or error}") from None
        await asyncio.to_thread(pull)

    async def push(self, ref: str, target: str) -> None:
        def push() -> None:
            repository, _, tag = target.rpartition(":")
            self._client.images.get(ref).tag(repository, tag)
            for item in self._client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in item:
                    raise BuildError(f"pushing {target} failed: {item['error']}")
        await asyncio.to_thread(push)

    async def remove(self, ref: str) -> None:
        def remove() -> None:
            try:
                self._client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass
        await asyncio.to_thread(remove)

    def save(self, ref: str) -> AsyncIterator[bytes]:
        """`docker save` of one image, streamed."""
        return save_stream(self._client, ref)

    async def load(self, chunks: AsyncIterator[bytes]) -> None:
        """`docker load` of a streamed archive, fed to the engine while it arrives."""
        try:
            await load_stream(self._client, chunks)
        except LoadFailed as error:
            raise BuildError(str(error)) from error

    # --- volumes -------------------------------------------------------------------------------

    async def create_volume(self, name: str, labels: dict[str, str]) -> None:
        """The engine's named volume, its root open to every sandbox user (sandboxes pick their own uid)."""
        def create() -> None:
            self._client.volumes.create(name=name, labels={**self._labels, **labels})
            self._client.containers.run(self._helper, ["chmod", "0777", "/volume"], entrypoint=[], user="root",
                                        remove=True, network_disabled=True, labels=self._labels,
                                        volumes={name: {"bind": "/volume", "mode": "rw"}})
        await asyncio.to_thread(create)

    async def remove_volume(self, name: str) -> None:
        def remove() -> None:
            volumes = self._client.volumes.list(filters={"label": f"corral.volume_of={name}"})
            try:
                volumes.append(self._client.volumes.get(name))
            except docker.errors.NotFound:
                pass
            for volume in volumes:
                try:
                    volume.remove()
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as error:
                    if error.status_code == 409:
                        raise StorageInUse(str(error.explanation)) from None
                    raise
        await asyncio.to_thread(remove)


def engine_endpoint(base_url: str | None) -> tuple[str, aiohttp.BaseConnector]:
    """The engine's HTTP API as aiohttp reaches it: a unix socket (the default) or `tcp://host:port`."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        return "http://docker", aiohttp.UnixConnector(path=url.removeprefix("unix://"))
    if url.startswith("tcp://"):
        return "http://" + url.removeprefix("tcp://"), aiohttp.TCPConnector()
    raise BuildError(f"builds need a unix:// or tcp:// Docker host, not {url}")
