"""The api's composition root: `build(settings, **overrides)` wires every piece, nothing else does."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from collections.abc import AsyncIterator

from aiohttp import web

from corral_contracts import codecs
from corral_contracts.codecs import RecordedEvent
from corral_contracts.runner import RunnerHeartbeat
from corral_contracts.subjects import (
    ACTIVITY_BUCKET, DISABLE_WEBHOOK_ENDPOINT, EVT_STREAM, PREVIEW_WAKE, RUNNER_ASSIGNMENTS, RUNNERS_BUCKET,
    events_of, snapshot_manager_command_subject,
)
from corral_eventstore import EventLog, OutboxRelay
from corral_messaging import Bus, Consumer, ConsumerPolicy, JetStreamBus

from .app.audit import AuditWriter
from .app.directory import SandboxDirectory
from .app.previews import PreviewLinks, PreviewService
from .app.identity import IdentityService
from .app.quotas import QuotaGate
from .app.sandboxes import Limits, SandboxService
from .app.ssh_access import SshAccessKeeper, SshAccessService
from .app.ssh_index import SshIndex
from .app.snapshots import SnapshotService
from .app.storage_supervision import StorageSupervisor
from .app.volumes import VolumeService
from .app.supervisor import Supervisor
from .app.webhook_endpoints import EndpointIndex, WebhookService
from .domain import supervision
from .domain.identity import hash_key
from .domain.ratelimits import RateLimiter
from .entrypoints.access import AccessPolicy
from .entrypoints.consumers import AssignmentDesk, FactRecorder, ProcessManager
from .entrypoints.build_logs import BuildLogs
from .entrypoints.http import create_app
from .entrypoints.preview_routes import PREVIEWS, WakeDesk
from .entrypoints.snapshot_consumers import SnapshotManagerFacts, SnapshotProcessManager, VolumeProcessManager, send
from .entrypoints.snapshot_routes import SnapshotEdge
from .entrypoints.realtime import EventStream
from .entrypoints.webhooks_rpc import DisableDesk
from .entrypoints.ssh_desk import SshDesk
from .settings import Settings

log = logging.getLogger("corral.api")

IN_ORDER = ConsumerPolicy(ack_wait=10.0, max_ack_pending=1)
"""One message at a time (a retry in backoff must not be overtaken); a crashed consumer's message comes back
after 10 s (a running handler keeps extending that)."""


class Api:
    """Everything the api runs, started and stopped together with its web application."""

    def __init__(self, settings: Settings, bus: Bus, event_log: EventLog, *, auditing: bool = True):
        self.settings = settings
        self.bus = bus
        self.event_log = event_log
        self.directory = SandboxDirectory(event_log)
        if settings.audit_retention_days > 0:
            self.directory.audit.retention = timedelta(days=settings.audit_retention_days)
        self.relay = OutboxRelay(event_log, bus.publish)
        self.identity = IdentityService(event_log=event_log, view=self.directory.identity,
                                        catch_up=self.directory.catch_up, recorded=self.recorded,
                                        defaults=settings.quota, use_granularity=settings.key_use_granularity)
        self.quotas = QuotaGate(event_log=event_log, view=self.directory.usage, quota=self.identity.quota,
                                catch_up=self.directory.catch_up)
        self.audit = AuditWriter(event_log, self.recorded)
        self.snapshots = SnapshotService(event_log=event_log, directory=self.directory, recorded=self.recorded)
        self.volumes = VolumeService(event_log=event_log, directory=self.directory, recorded=self.recorded)
        self.service = SandboxService(event_log=event_log, directory=self.directory, runners=self.runners,
                                      recorded=self.recorded, limits=Limits(), quotas=self.quotas,
                                      create_wait=settings.create_wait, report_activity=self.report_activity,
                                      snapshots=self.snapshots, volumes=self.volumes)
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
        self.ssh_index = SshIndex()
        self.directory.projections.append(self.ssh_index.apply)
        self.ssh_access = SshAccessService(event_log=event_log, directory=self.directory, sandboxes=self.service,
                                           index=self.ssh_index, recorded=self.recorded, ssh_host=settings.ssh_host,
                                           ssh_port=settings.ssh_port, minute=settings.minute)
        self.service.related_streams.append(self.ssh_index.streams_of)
        self.ssh_keeper = SshAccessKeeper(self.ssh_access, settings.ssh_sweep_interval)
        self.fact_recorder = FactRecorder(self.service, self.snapshots)
        self.assignments = AssignmentDesk(self.directory)
        self.endpoints = EndpointIndex()
        self.directory.projections.append(self.endpoints.apply)
        self.webhooks = WebhookService(event_log=event_log, index=self.endpoints, bus=bus, recorded=self.recorded,
                                       caught_up=self.directory.catch_up,
                                       allow_private=settings.webhooks_allow_private)
        self.consumers: list[Consumer] = []
        self.access = AccessPolicy(view=self.directory.identity, identity=self.identity, limiter=RateLimiter(),
                                   anonymous_limit=settings.rate_limit_anonymous,
                                   failed_auth_limit=settings.rate_limit_failed_auth)
        self.app = create_app(self.service, self.directory, settings.toolbox_proxy_url,
                              status=lambda: {"sweeps": self.supervisor.sweeps, "logPosition": self.directory.position},
                              identity=self.identity, policy=self.access, audit=self.audit if auditing else None,
                              webhooks=self.webhooks, ssh_access=self.ssh_access,
                              snapshots=SnapshotEdge(snapshots=self.snapshots, volumes=self.volumes,
                                                     sandboxes=self.service, build_logs=BuildLogs(bus, self.directory),
                                                     toolbox_url=settings.toolbox_proxy_url))
        self.previews = PreviewService(event_log=event_log, sandboxes=self.service, recorded=self.recorded,
                                       links=PreviewLinks(base=settings.preview_url, proxy=settings.proxy_url,
                                                          form=settings.preview_url_form))
        self.app[PREVIEWS] = self.previews
        self.wake_desk = WakeDesk(self.previews)
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
        known = self.service.activity
        for sandbox_id, at in reported.items():  # a keep-alive recorded while the bucket was read stays
            if sandbox_id not in known or known[sandbox_id] < at:
                known[sandbox_id] = at
        for sandbox_id in [s for s in known if s not in self.directory.sandboxes]:
            del known[sandbox_id]
        return dict(known)

    async def report_activity(self, sandbox_id: str, at: datetime) -> None:
        await self.bus.kv_put(ACTIVITY_BUCKET, sandbox_id, at.isoformat().encode())

    async def ensure_admin_key(self) -> None:
        """The default organization and the configured admin key, an operator's. A store recorded before
        keys carried the operator flag gets it from the configuration."""
        await self.identity.ensure_bootstrap(self.settings.admin_api_key)
        entry = self.directory.api_keys.get(hash_key(self.settings.admin_api_key))
        if entry is not None and not entry.operator:
            log.info("the configured admin key %s... is a platform operator", entry.prefix)
            entry.operator = True

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
        await self.bus.serve(DISABLE_WEBHOOK_ENDPOINT, DisableDesk(self.webhooks).handle)
        await self.bus.serve(PREVIEW_WAKE, self.wake_desk.handle)
        await SshDesk(self.ssh_access).serve(self.bus)
        self.supervisor.start()
        self.ssh_keeper.start()
        log.info("api ready: %d sandboxes, log position %d", len(self.directory.sandboxes), self.directory.position)

    async def stop(self) -> None:
        await self.ssh_keeper.stop()
        await self.supervisor.stop()
        await self.audit.drain()
        await self.identity.drain()
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


def build(settings: Settings, *, bus: Bus | None = None, event_log: EventLog | None = None,
          auditing: bool = True) -> Api:
    """`auditing=False` leaves the audit middleware out: only the benchmark that measures its cost does."""
    if event_log is None and settings.database_url.startswith("sqlite:///"):
        from pathlib import Path

        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return Api(
        settings,
        bus or JetStreamBus(settings.nats_url, name="corral-api"),
        event_log or EventLog(RecordedEvent, settings.database_url),
        auditing=auditing,
    )


__all__ = ["Api", "build"]
