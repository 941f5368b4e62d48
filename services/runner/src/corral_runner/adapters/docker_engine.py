"""The Docker engine through docker-py, every call in a thread so the event loop never blocks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import docker
import docker.errors
from docker.types import Mount

from corral_images import LoadFailed, load_stream, save_stream

from ..app.ports import EngineError, EngineUnavailable
from ..domain.isolation import LABEL_RUNNER, LABEL_SANDBOX, NETWORK_NAME, NETWORK_OPTIONS, ContainerSpec
from ..domain.reconcile import Observed

log = logging.getLogger(__name__)

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def _translate(error: Exception) -> Exception:
    if isinstance(error, docker.errors.ImageNotFound):
        return EngineError(f"image not found: {error.explanation}")
    if isinstance(error, docker.errors.APIError) and error.status_code and 400 <= error.status_code < 500:
        return EngineError(str(error.explanation or error))
    return EngineUnavailable(str(error))


NO_QUOTA = "--storage-opt is supported only"
"""How the engine refuses a size for the writable layer it cannot enforce."""


class DockerEngine:
    def __init__(self, base_url: str | None = None):
        self._client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        self._quota: bool | None = None
        """Whether `storage_opt size` works here: None until the engine's storage was examined."""

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except docker.errors.NotFound:
            raise
        except (docker.errors.DockerException, OSError) as error:
            raise _translate(error) from error

    async def ensure_network(self) -> None:
        def ensure() -> None:
            if not self._client.networks.list(names=[NETWORK_NAME]):
                try:
                    self._client.networks.create(NETWORK_NAME, driver="bridge", options=NETWORK_OPTIONS,
                                                 labels={"corral.managed": "true"})
                except docker.errors.APIError as error:
                    if error.status_code != 409:
                        raise
        await self._run(ensure)

    async def create(self, spec: ContainerSpec) -> str:
        def create() -> str:
            try:
                return str(self._client.containers.get(spec.name).id)
            except docker.errors.NotFound:
                pass
            mounts = [Mount(target=target, source=source, type="bind", read_only=ro)
                      for source, target, ro in spec.mounts]
            mounts += [Mount(target=target, source=volume, type="volume") for volume, target in spec.volumes]
            options: dict[str, Any] = dict(
                command=spec.command, entrypoint=[], name=spec.name, user=spec.user, hostname=spec.hostname,
                working_dir=spec.working_dir, environment=spec.environment, labels=spec.labels, mounts=mounts,
                mem_limit=spec.mem_bytes, memswap_limit=spec.mem_bytes, nano_cpus=spec.nano_cpus,
                pids_limit=spec.pids_limit, cap_drop=spec.cap_drop, cap_add=spec.cap_add,
                security_opt=spec.security_opt, init=True, detach=True, network=spec.network,
            )
            if self._disk_limits():
                options["storage_opt"] = {"size": str(spec.disk_bytes)}
            try:
                container = self._client.containers.create(spec.image, **options)
            except docker.errors.APIError as error:
                if error.status_code == 409:  # created concurrently by a redelivered command
                    return str(self._client.containers.get(spec.name).id)
                if NO_QUOTA in str(error.explanation):
                    self._quota = False
                    log.warning("disk sizes are NOT enforced: the engine refused a writable-layer size (%s)",
                                error.explanation)
                    return create()
                raise
            if not spec.attached:  # networkBlockAll: it first starts with loopback only
                self._client.networks.get(spec.network).disconnect(container)
            return str(container.id)
        return str(await self._run(create))

    def _disk_limits(self) -> bool:
        if self._quota is None:
            info = self._client.info()
            backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem", "")
            self._quota = info.get("Driver") == "btrfs" or (info.get("Driver") == "overlay2" and backing == "xfs")
            if not self._quota:
                log.warning("disk sizes are NOT enforced: the engine stores containers with %s on %s "
                            "(a writable-layer size needs the btrfs driver, or overlay2 on XFS with project "
                            "quotas; an engine that `make run` starts itself gets a btrfs data root)",
                            info.get("Driver"), backing or "an unknown filesystem")
        return self._quota

    async def disk_limits(self) -> bool:
        return bool(await self._run(self._disk_limits))

    # --- the sandboxes' network -------------------------------------------------------------------

    async def bridge(self) -> str:
        def bridge() -> str:
            network = self._client.networks.get(NETWORK_NAME)
            return str(network.attrs.get("Options", {}).get(BRIDGE_NAME_OPTION) or f"br-{network.id[:12]}")
        return str(await self._run(bridge))

    def _networks(self, name: str) -> dict[str, Any]:
        container = self._client.containers.get(name)
        return dict(container.attrs["NetworkSettings"].get("Networks") or {})

    async def attached(self, name: str) -> bool:
        def attached() -> bool:
            try:
                return NETWORK_NAME in self._networks(name)
            except docker.errors.NotFound:
                return False
        return bool(await self._run(attached))

    async def address(self, name: str) -> str | None:
        def address() -> str | None:
            try:
                endpoint = self._networks(name).get(NETWORK_NAME) or {}
            except docker.errors.NotFound:
                return None
            return endpoint.get("IPAddress") or None
        return await self._run(address)  # type: ignore[no-any-return]

    async def attach(self, name: str) -> None:
        def attach() -> None:
            try:
                self._client.networks.get(NETWORK_NAME).connect(name)
            except docker.errors.APIError as error:
                if "already exists" not in str(error.explanation):
                    raise
        await self._run(attach)

    async def detach(self, name: str) -> None:
        def detach() -> None:
            try:
                self._client.networks.get(NETWORK_NAME).disconnect(name, force=True)
            except docker.errors.APIError as error:
                if "is not connected" not in str(error.explanation):
                    raise
        await self._run(detach)

    async def pause(self, name: str) -> None:
        await self._run(lambda: self._client.containers.get(name).pause())

    async def unpause(self, name: str) -> None:
        await self._run(lambda: self._client.containers.get(name).unpause())

    async def start(self, name: str) -> None:
        await self._run(lambda: self._client.containers.get(name).start())

    async def stop(self, name: str, *, force: bool, grace: float = 10.0) -> int | None:
        def stop() -> int | None:
            try:
                container = self._client.containers.get(name)
            except docker.errors.NotFound:
                return None
            if container.status in ("running", "restarting", "paused"):
                if force:
                    container.kill()
                else:
                    container.stop(timeout=int(grace))
                container.wait(timeout=grace + 30)
                container.reload()
            return int(container.attrs["State"].get("ExitCode", 0))
        return await self._run(stop)  # type: ignore[no-any-return]

    async def remove(self, name: str) -> None:
        def remove() -> None:
            try:
                self._client.containers.get(name).remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as error:
                if error.status_code != 409 or "already in progress" not in str(error.explanation):
                    raise
        await self._run(remove)

    async def state(self, name: str) -> dict[str, Any] | None:
        def state() -> dict[str, Any] | None:
            try:
                return dict(self._client.containers.get(name).attrs["State"])
            except docker.errors.NotFound:
                return None
        return await self._run(state)  # type: ignore[no-any-return]

    async def logs_tail(self, name: str, lines: int = 20) -> str:
        def tail() -> str:
            try:
                return self._client.containers.get(name).logs(tail=lines).decode(errors="replace")
            except docker.errors.NotFound:
                return ""
        return str(await self._run(tail))

    async def list_managed(self, runner_id: str) -> list[Observed]:
        def listing() -> list[Observed]:
            found = self._client.containers.list(all=True, filters={"label": f"{LABEL_RUNNER}={runner_id}"})
            return [
                Observed(sandbox_id=c.labels[LABEL_SANDBOX], running=c.status == "running",
                         exit_code=c.attrs["State"].get("ExitCode"), container=c.name, container_id=c.id,
                         pid=int(c.attrs["State"].get("Pid") or 0), started_at=c.attrs["State"].get("StartedAt", ""))
                for c in found if LABEL_SANDBOX in c.labels
            ]
        return await self._run(listing)  # type: ignore[no-any-return]

    async def commit(self, name: str, image: str, labels: dict[str, str]) -> None:
        repository, _, tag = image.partition(":")

        def commit() -> None:
            container = self._client.containers.get(name)
            container.commit(repository=repository, tag=tag or "latest", pause=False,
                             conf={"Labels": {**container.labels, **labels}})
        await self._run(commit)

    async def remove_image(self, image: str) -> None:
        def remove() -> None:
            try:
                self._client.images.remove(image, force=True)
            except docker.errors.ImageNotFound:
                pass
        await self._run(remove)

    async def update(self, name: str, *, nano_cpus: int, mem_bytes: int) -> None:
        def update() -> None:
            container = self._client.containers.get(name)
            # docker-py's update() has no NanoCpus, and a container made with NanoCpus refuses a CPU
            # quota; the engine's update endpoint takes NanoCpus directly.
            api = self._client.api
            response = api._post_json(api._url("/containers/{0}/update", container.id),  # noqa: SLF001
                                      data={"NanoCpus": nano_cpus, "Memory": mem_bytes, "MemorySwap": mem_bytes})
            api._raise_for_status(response)  # noqa: SLF001
        await self._run(update)

    # --- snapshot images and volumes ----------------------------------------------------------

    async def engine_id(self) -> str:
        return str(await self._run(lambda: self._client.info().get("ID", "")))

    async def image_present(self, ref: str) -> bool:
        def present() -> bool:
            try:
                self._client.images.get(ref)
                return True
            except docker.errors.ImageNotFound:
                return False
        return bool(await self._run(present))

    async def tag(self, ref: str, target: str) -> None:
        repository, _, tag = target.rpartition(":")
        await self._run(lambda: self._client.images.get(ref).tag(repository, tag))

    async def pull(self, ref: str) -> None:
        await self._run(lambda: self._client.images.pull(ref))

    async def image_size(self, ref: str) -> int:
        return int(await self._run(lambda: self._client.images.get(ref).attrs.get("Size") or 0))

    def save(self, ref: str) -> AsyncIterator[bytes]:
        return save_stream(self._client, ref)

    async def load(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            await load_stream(self._client, chunks)
        except LoadFailed as error:
            raise EngineError(str(error)) from error

    async def tags_with_prefix(self, prefix: str) -> list[str]:
        def tags() -> list[str]:
            return [t for image in self._client.images.list() for t in image.tags if t.startswith(prefix)]
        return list(await self._run(tags))

    async def volume_mount(self, volume: str, subpath: str, helper_image: str, labels: dict[str, str]) -> str:
        """The named volume to mount: the volume itself, or (with a subpath) a volume bound to that directory of
        it, made on first use (the directory is created, open to every sandbox user). Engines with API ≥ 1.45
        could use the mount's own `Subpath` option instead."""
        def ensure() -> str:
            try:
                main = self._client.volumes.get(volume)
            except docker.errors.NotFound:
                main = self._client.volumes.create(name=volume, labels=labels)
            if not subpath:
                return volume
            name = f"{volume}-{hashlib.sha256(subpath.encode()).hexdigest()[:12]}"
            try:
                self._client.volumes.get(name)
                return name
            except docker.errors.NotFound:
                pass
            self._client.containers.run(helper_image, ["sh", "-c", 'mkdir -p "/volume/$1" && chmod 0777 "/volume/$1"',
                                                       "sh", subpath], entrypoint=[], user="root", remove=True,
                                        network_disabled=True, labels=labels,
                                        volumes={volume: {"bind": "/volume", "mode": "rw"}})
            device = f"{main.attrs['Mountpoint']}/{subpath}"
            self._client.volumes.create(name=name, driver="local",
                                        driver_opts={"type": "none", "o": "bind", "device": device},
                                        labels={**labels, "corral.volume_of": volume})
            return name
        return str(await self._run(ensure))

    def close(self) -> None:
        self._client.close()
