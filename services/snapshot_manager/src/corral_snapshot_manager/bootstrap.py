"""The snapshot manager's composition root: `build(settings, **overrides)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from corral_contracts import codecs
from corral_contracts.envelope import EventEnvelope
from corral_contracts.snapshot_manager import BuildLogChunk
from corral_contracts.subjects import CMD_STREAM, build_log_subject, event_subject, snapshot_manager_commands
from corral_messaging import Bus, Consumer, ConsumerPolicy, JetStreamBus

from .adapters.docker_images import DockerImages
from .app.builds import Builder
from .entrypoints.commands import CommandDesk
from .entrypoints.http import create_app
from .settings import Settings

log = logging.getLogger("corral.snapshot_manager")

ONE_AT_A_TIME = ConsumerPolicy(ack_wait=30.0, max_ack_pending=1)
"""Builds one after another (two cores); a running handler keeps extending its ack deadline."""


class SnapshotManager:
    def __init__(self, settings: Settings, bus: Bus, images: DockerImages):
        self.settings = settings
        self.bus = bus
        self.images = images
        self.builder = Builder(images=images, volumes=images, report=self.report, write_log=self.write_log,
                               build_timeout=settings.build_timeout, registry=settings.registry)
        self.consumers: list[Consumer] = []
        self.app = create_app(images, settings.internal_token)
        self.app.cleanup_ctx.append(self._lifespan)

    async def report(self, fact: Any, *, msg_id: str) -> None:
        key = getattr(fact, "snapshot_id", None) or getattr(fact, "volume_id", "")
        envelope = EventEnvelope(event_id=msg_id, aggregate_id=key, occurred_at=datetime.now(timezone.utc),
                                 payload=fact)
        await self.bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=msg_id)

    async def write_log(self, chunk: BuildLogChunk) -> None:
        await self.bus.publish(build_log_subject(chunk.snapshot_id), codecs.encode(chunk),
                               msg_id=f"log:{chunk.snapshot_id}:{chunk.attempt}:{chunk.seq}")

    async def start(self) -> None:
        await self.bus.connect()
        await self.bus.ensure_streams()
        desk = CommandDesk(self.builder)
        self.consumers = [
            self.bus.consume(stream=CMD_STREAM, durable=f"snapshot-manager-{target}",
                             filter_subject=snapshot_manager_commands(target), handler=desk.handle,
                             policy=ONE_AT_A_TIME)
            for target in ("builds", "volumes")
        ]
        for consumer in self.consumers:
            await consumer.start()
        log.info("snapshot manager ready on %s:%d (registry: %s)", self.settings.host, self.settings.port,
                 self.settings.registry or "none")

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.bus.close()

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.stop()


def build(settings: Settings, *, bus: Bus | None = None, images: DockerImages | None = None) -> SnapshotManager:
    return SnapshotManager(
        settings, bus or JetStreamBus(settings.nats_url, name="corral-snapshot-manager"),
        images or DockerImages(settings.docker_url, build_args=settings.build_args, helper_image=settings.helper_image,
                               labels=settings.labels))
