"""The snapshot manager's use cases: make a snapshot image exist (import or build), check and fix its
python3, remove it; create and remove volume storage. Each reports what happened as a fact."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from corral_contracts import snapshot_manager as sm
from corral_contracts.volume import docker_volume

from ..domain import recipes
from .ports import BuildError, FactSink, ImageStore, VolumeStore

log = logging.getLogger(__name__)

LogWriter = Callable[[sm.BuildLogChunk], Awaitable[None]]
FLUSH_EVERY = 0.2
"""Seconds between build-log chunks while output flows (a chunk is also sent at 16 KiB)."""


class BuildLog:
    """Collects a build's output (from the builder's thread) and publishes it in chunks as it comes."""

    def __init__(self, snapshot_id: str, attempt: int, write: LogWriter):
        self._snapshot_id = snapshot_id
        self._attempt = attempt
        self._write = write
        self._loop = asyncio.get_running_loop()
        self._pending: list[str] = []
        self._size = 0
        self._seq = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._pump())

    def line(self, text: str) -> None:
        """Thread-safe: called from the builder's thread."""
        self._loop.call_soon_threadsafe(self._add, text)

    def say(self, text: str) -> None:
        self._add(text if text.endswith("\n") else text + "\n")

    def _add(self, text: str) -> None:
        self._pending.append(text)
        self._size += len(text)
        if self._size >= 16384:
            self._wake.set()

    async def _flush(self, end: bool = False) -> None:
        if not self._pending and not end:
            return
        text, self._pending, self._size = "".join(self._pending), [], 0
        self._seq += 1
        try:
            await self._write(sm.BuildLogChunk(snapshot_id=self._snapshot_id, attempt=self._attempt, seq=self._seq,
                                               text=text, end=end))
        except Exception as error:  # logs are best effort: a build never fails for its log
            log.warning("build log of %s: %s", self._snapshot_id, error)

    async def _pump(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), FLUSH_EVERY)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._closing:
                await self._flush()

    async def close(self) -> None:
        """Send what is left as the last chunk once the pump has finished its current one. The pump is asked to
        stop, not cancelled: a cancelled pump would lose the chunk it was sending."""
        self._closing = True
        self._wake.set()
        await self._task
        await self._flush(end=True)


class Builder:
    def __init__(self, *, images: ImageStore, volumes: VolumeStore, report: FactSink, write_log: LogWriter,
                 build_timeout: float = 3600.0, registry: str = ""):
        self._images = images
        self._volumes = volumes
        self._report = report
        self._write_log = write_log
        self._timeout = build_timeout
        self._registry = registry

    async def _fact(self, cause: str, fact: Any) -> None:
        await self._report(fact, msg_id=f"snapshot-manager:{cause}:{type(fact).__name__}")

    async def build(self, command: sm.BuildSnapshot, cause: str) -> None:
        started = time.monotonic()
        state = "pulling" if command.source == "image" else "building"
        await self._fact(cause, sm.ImageBuildStarted(snapshot_id=command.snapshot_id, state=state))
        log.info("snapshot %s (attempt %d): making %s from %s", command.snapshot_id, command.attempt, command.ref,
                 command.source)
        out = BuildLog(command.snapshot_id, command.attempt, self._write_log)
        labels = {"corral.snapshot": command.snapshot_id}
        try:
            if await self._images.present(command.ref):
                out.say(f"{command.ref} is already built: reusing it")
            else:
                await self._make(command, labels, out)
            python = await self._ensure_python(command.ref, labels, out)
            info = await self._images.inspect(command.ref)
            if self._registry:
                target = f"{self._registry}/{command.ref}"
                out.say(f"pushing {target}")
                await self._images.push(command.ref, target)
        except BuildError as error:
            reason = str(error)
            log.info("snapshot %s: failed after %.1fs: %s", command.snapshot_id, time.monotonic() - started, reason)
            out.say(f"FAILED: {reason}")
            await out.close()
            await self._fact(cause, sm.ImageBuildFailed(snapshot_id=command.snapshot_id, reason=reason,
                                                        state="error" if command.source == "image" else "build_failed"))
            return
        log.info("snapshot %s: ready after %.1fs", command.snapshot_id, time.monotonic() - started)
        out.say(f"snapshot image {command.ref} ready ({info['size'] / 1e6:.0f} MB, python {python}) "
                f"in {time.monotonic() - started:.1f}s")
        await out.close()
        await self._fact(cause, sm.ImageReady(snapshot_id=command.snapshot_id, ref=command.ref, size=info["size"],
                                              python=python, entrypoint=info["entrypoint"]))

    async def _make(self, command: sm.BuildSnapshot, labels: dict[str, str], out: BuildLog) -> None:
        if command.source == "image":
            await self._need(command.image_name, out)
            out.say(f"keeping {command.image_name} as {command.ref}")
            dockerfile = recipes.import_dockerfile(command.image_name)
        elif command.source == "dockerfile":
            if command.context_hashes:
                raise BuildError("build contexts (contextHashes) need object storage, which this installation "
                                 "does not have; inline the files in the Dockerfile instead")
            for base in recipes.base_images(command.dockerfile):
                await self._need(base, out)
            dockerfile = command.dockerfile
        else:
            raise BuildError(f"a {command.source} snapshot is not built by the snapshot manager")
        log.info("building %s", command.ref)
        await self._images.build(dockerfile, command.ref, labels, out.line, self._timeout)

    async def _need(self, image: str, out: BuildLog) -> None:
        """A base image must be on this host, or pulled from the configured registry."""
        if await self._images.present(image):
            return
        if not self._registry:
            raise BuildError(recipes.missing_base_reason(image, ""))
        out.say(f"pulling {image}")
        try:
            await self._images.pull(image)
        except BuildError as error:
            raise BuildError(f"{recipes.missing_base_reason(image, self._registry)}: {error}") from None

    async def _ensure_python(self, ref: str, labels: dict[str, str], out: BuildLog) -> str:
        log.info("probing python3 in %s", ref)
        version, problem = recipes.python_verdict(*await self._images.probe(ref, recipes.PYTHON_PROBE))
        if problem is None:
            return version
        out.say(f"{problem}; adding python3 to the image")
        log.info("%s: %s; adding python3", ref, problem)
        user = (await self._images.inspect(ref))["user"]
        try:
            await self._images.build(recipes.add_python_dockerfile(ref, user), ref, labels, out.line, self._timeout)
        except BuildError as error:
            raise BuildError(f"the image has no usable python3 (≥ 3.9), which the sandbox agent needs, and adding "
                             f"one failed: {error}") from None
        version, problem = recipes.python_verdict(*await self._images.probe(ref, recipes.PYTHON_PROBE))
        if problem is not None:
            raise BuildError(f"the image has no usable python3 (≥ 3.9), which the sandbox agent needs, and adding "
                             f"one did not help: {problem}")
        return version

    async def remove(self, command: sm.RemoveSnapshotImage, cause: str) -> None:
        if not command.keep_image:
            await self._images.remove(command.ref)
        await self._fact(cause, sm.ImageRemoved(snapshot_id=command.snapshot_id))

    async def create_volume(self, command: sm.CreateVolumeStorage, cause: str) -> None:
        try:
            await self._volumes.create_volume(docker_volume(command.volume_id), {"corral.volume_id": command.volume_id})
        except Exception as error:
            log.warning("creating the storage of volume %s failed: %s", command.volume_id, error)
            await self._fact(cause, sm.VolumeStorageFailed(volume_id=command.volume_id, reason=str(error)))
            return
        await self._fact(cause, sm.VolumeStorageReady(volume_id=command.volume_id))

    async def delete_volume(self, command: sm.DeleteVolumeStorage, cause: str) -> None:
        await self._volumes.remove_volume(docker_volume(command.volume_id))
        await self._fact(cause, sm.VolumeStorageRemoved(volume_id=command.volume_id))

    async def handle(self, command: sm.SnapshotManagerCommand, cause: str) -> None:
        match command:
            case sm.BuildSnapshot():
                await self.build(command, cause)
            case sm.RemoveSnapshotImage():
                await self.remove(command, cause)
            case sm.CreateVolumeStorage():
                await self.create_volume(command, cause)
            case sm.DeleteVolumeStorage():
                await self.delete_volume(command, cause)
