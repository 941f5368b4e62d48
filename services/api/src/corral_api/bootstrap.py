"""The api's composition root: `build(settings, **overrides)` wires every piece, nothing else does."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from collections.abc import AsyncIterator

from aiohttp import web

from corral_contracts import codecs
from corral_contracts.codecs import RecordedEvent
from corral_contracts.runner import RunnerHeartbeat
from corral_contracts.subjects import (ACTIVITY_BUCKET, EVT_STREAM, RUNNER_ASSIGNMENTS, RUNNERS_BUCKET, events_of,
                                      snapshot_manager_command_subject)
from corral_eventstore import ConcurrencyConflict, EventLog, OutboxRelay
from corral_messaging import Bus, Consumer, ConsumerPolicy, JetStreamBus

from .app.directory import SandboxDirectory
from .app.sandboxes import Limits, SandboxService
from .app.snapshots import SnapshotService
from .app.storage_supervision import StorageSupervisor
from .app.volumes import VolumeService
from .app.supervisor import Supervisor
from .domain import supervision
from .domain.identity import admin_key_created, hash_key, key_id_for
from .entrypoints.consumers import AssignmentDesk, FactRecorder, ProcessManager
from .entrypoints.build_logs import BuildLogs
from .entrypoints.http import create_app
from .entrypoints.snapshot_consumers import SnapshotManagerFacts, SnapshotProcessManager, VolumeProcessManager, send
from .entrypoints.snapshot_routes import SnapshotEdge
from .entrypoints.realtime import EventStream
from .settings import Settings

log = logging.getLogger("corral.api")

IN_ORDER = ConsumerPolicy(ack_wait=10.0, max_ack_pending=1)
"""One message at a time (a retry in backoff must not be overtaken); a crashed consumer's message comes back
after 10 s (a running handler keeps extending that)."""


class Api:
    """Everything the api runs, started and stopped together with its web application."""

    def __init__(self, settings: Settings, bus: Bus, event_log: EventLog):
        self.settings = settings
        self.bus = bus
        self.event_log = event_log
        self.directory = SandboxDirectory(event_log)
        self.relay = OutboxRelay(event_log, bus.publish)
        self.snapshots = SnapshotService(event_log=event_log, directory=self.directory, recorded=self.recorded)
        self.volumes = VolumeService(event_log=event_log, directory=self.directory, recorded=self.recorded)
        self.service = SandboxService(event_log=event_log, directory=self.directory, runners=self.runners,
                                      recorded=self.recorded, limits=Limits(), create_wait=settings.create_wait,
                                      report_activity=self.report_activity, snapshots=self.snapshots,
                                      volumes=self.volumes)
        self.process_manager = ProcessManager(bus, event_log)
        self.snapshot_process_manager = SnapshotProcessManager(bus, event_log, self.directory, self.service)
        self.storage_supervisor = StorageSupervisor(
            directory=self.directory, snapshots=self.snapshots, send=self.send_to_snapshot_manager,
            advance_waiting=self.snapshot_process_manager.advance_waiting, reissue_after=settings.reissue_after,
            build_deadline=settings.build_timeout + 300)
        self.supervisor = Supervisor(directory=self.directory, service=self.service, activity=self.activity,
                                     reissue=self.process_manager.reissue, interval=settings.supervise_interval,
                                     reissue_after=settings.reissue_after, minute=settings.minute,
                                     deadlines=supervision.scaled(settings.deadline_factor),
                                     backup=self.process_manager.backup, backup_every=settings.backup_every,
                                     extra=[self.storage_supervisor.sweep])
        self.fact_recorder = FactRecorder(self.service, self.snapshots)
        self.assignments = AssignmentDesk(self.directory)
        self.consumers: list[Consumer] = []
        self.app = create_app(self.service, self.directory, settings.toolbox_proxy_url,
                              status=lambda: {"sweeps": self.supervisor.sweeps, "logPosition": self.directory.position},
                              snapshots=SnapshotEdge(snapshots=self.snapshots, volumes=self.volumes, sandboxes=self.service,
                                                     build_logs=BuildLogs(bus, self.directory),
                                                     toolbox_url=settings.toolbox_proxy_url))
        self.realtime = EventStream(self.directory, settings.toolbox_proxy_url)
        self.realtime.attach(self.app)
        self.app.cleanup_ctx.append(self._lifespan)

    async def send_to_snapshot_manager(self, command: object, command_id: str) -> None:
        await send(self.bus, snapshot_manager_command_subject(command), command, command_id)  # type: ignore[arg-type]

    def recorded(self) -> None:
        self.relay.notify()
        self.directory.notify()

    async def runners(self) -> list[RunnerHeartbeat]:
        items = await self.bus.kv_items(RUNNERS_BUCKET)
        return [codecs.runner_heartbeat.decode(value) for value in items.values()]

    async def activity(self) -> dict[str, datetime]:
        """Outside activity per sandbox, as the proxy, runners and this api reported it."""
        reported: dict[str, datetime] = {}
        for sandbox_id, value in (await self.bus.kv_items(ACTIVITY_BUCKET)).items():
            try:
                reported[sandbox_id] = datetime.fromisoformat(value.decode())
            except ValueError:
                continue
        self.service.activity = reported
        return reported

    async def report_activity(self, sandbox_id: str, at: datetime) -> None:
        await self.bus.kv_put(ACTIVITY_BUCKET, sandbox_id, at.isoformat().encode())

    async def ensure_admin_key(self) -> None:
        key_hash = hash_key(self.settings.admin_api_key)
        if key_hash in self.directory.api_keys:
            return
        try:
            await asyncio.to_thread(self.event_log.append, key_id_for(key_hash), 0,
                                    [admin_key_created(self.settings.admin_api_key)], {"Corral-Actor": "bootstrap"})
        except ConcurrencyConflict:
            pass
        self.recorded()
        await self.directory.catch_up()

    async def start(self) -> None:
        await self.bus.connect()
        await self.bus.ensure_streams()
        await self.directory.start()
        await self.ensure_admin_key()
        await self.snapshots.ensure_default()
        await self.realtime.start()
        await self.relay.start()
        self.consumers = [
            self.bus.consume(stream=EVT_STREAM, durable="api-process-manager", filter_subject=events_of("sandbox"),
                             handler=self.process_manager.handle, policy=IN_ORDER),
            self.bus.consume(stream=EVT_STREAM, durable="api-runner-facts", filter_subject=events_of("runner"),
                             handler=self.fact_recorder.handle, policy=IN_ORDER),
            self.bus.consume(stream=EVT_STREAM, durable="api-snapshot-process-manager",
                             filter_subject=events_of("snapshot"), handler=self.snapshot_process_manager.handle,
                             policy=IN_ORDER),
            self.bus.consume(stream=EVT_STREAM, durable="api-volume-process-manager", filter_subject=events_of("volume"),
                             handler=VolumeProcessManager(self.bus).handle, policy=IN_ORDER),
            self.bus.consume(stream=EVT_STREAM, durable="api-snapshot-manager-facts",
                             filter_subject=events_of("snapshot_manager"),
                             handler=SnapshotManagerFacts(self.snapshots, self.volumes).handle, policy=IN_ORDER),
        ]
        for consumer in self.consumers:
            await consumer.start()
        await self.bus.serve(RUNNER_ASSIGNMENTS, self.assignments.handle)
        self.supervisor.start()
        log.info("api ready: %d sandboxes, log position %d", len(self.directory.sandboxes), self.directory.position)

    async def stop(self) -> None:
        await self.supervisor.stop()
        for consumer in self.consumers:
            await consumer.stop()
        await self.relay.stop()
        await self.realtime.stop()
        await self.directory.stop()
        await self.bus.close()
        await asyncio.to_thread(self.event_log.close)

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.stop()


def build(settings: Settings, *, bus: Bus | None = None, event_log: EventLog | None = None) -> Api:
    if event_log is None and settings.database_url.startswith("sqlite:///"):
        from pathlib import Path

        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return Api(
        settings,
        bus or JetStreamBus(settings.nats_url, name="corral-api"),
        event_log or EventLog(RecordedEvent, settings.database_url),
    )


__all__ = ["Api", "build"]
