"""The runner's composition root: `build(settings, **overrides)`."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from corral_agent.bundle import build_zipapp
from corral_agent.client import AgentUnavailable
from corral_contracts import codecs
from corral_contracts.envelope import EventEnvelope
from corral_contracts.runner import AssignmentsRequest, RunnerHeartbeat
from corral_contracts.snapshot import runner_image
from corral_contracts.subjects import ACTIVITY_BUCKET, CMD_STREAM, RUNNER_ASSIGNMENTS, RUNNERS_BUCKET, event_subject, runner_commands
from corral_messaging import Bus, Consumer, ConsumerPolicy, JetStreamBus

from .adapters.agent_link import AgentLink
from .adapters.cgroup_counters import read_oom_kills
from .adapters.docker_engine import DockerEngine
from .adapters.docker_stats import DockerStats
from .adapters.host_firewall import IptablesFirewall
from .adapters.snapshot_source import SnapshotSource
from .app.network import NetworkGuard
from .app.oom import OomWatch
from .app.ports import ContainerEngine, Firewall
from .app.sandboxes import SandboxRunner
from .domain.isolation import AGENT_FILE
from .domain.network_policy import normalize_denied
from .entrypoints.commands import CommandDesk
from .entrypoints.toolbox import create_toolbox_app
from .settings import Settings

log = logging.getLogger("corral.runner")


def denied_networks(settings: Settings) -> list[str]:
    """What sandboxes never reach besides the host itself: the configured networks and a NATS server
    on another machine (one on this host is covered by the host rule)."""
    denied = normalize_denied(settings.sandbox_denied)
    host = urlsplit(settings.nats_url.split(",")[0]).hostname or ""
    try:
        address = ipaddress.IPv4Address(socket.gethostbyname(host)) if host else None
    except (OSError, ValueError):
        address = None
    if address is not None and not address.is_loopback and f"{address}/32" not in denied:
        denied.append(f"{address}/32")
    return denied


class Runner:
    def __init__(self, settings: Settings, bus: Bus, engine: ContainerEngine, firewall: Firewall | None):
        self.settings = settings
        self.bus = bus
        self.engine = engine
        self.boot_id = uuid.uuid4().hex[:12]
        self.started_at = datetime.now(timezone.utc).isoformat()
        self.agent_dir = settings.runner_dir / "agent"
        self.agent = AgentLink(settings.runner_dir / "runs")
        self.network = NetworkGuard(runner_id=settings.runner_id, engine=engine,  # type: ignore[arg-type]
                                    firewall=firewall, denied=denied_networks(settings))
        self.oom = OomWatch(runner_id=settings.runner_id, report=self.report, read=read_oom_kills)
        self.disk_limits = False
        self.sandboxes = SandboxRunner(runner_id=settings.runner_id, engine=engine, agent=self.agent,
                                       report=self.report, agent_dir=self.agent_dir, network=self.network,
                                       agent_ready_timeout=settings.agent_ready_timeout,
                                       extra_labels=settings.container_labels,
                                       snapshots=SnapshotSource(engine, manager_url=settings.snapshot_manager_url,  # type: ignore[arg-type]
                                                                token=settings.internal_token,
                                                                registry=settings.registry,
                                                                mode=settings.snapshot_fetch),
                                       helper_image=settings.helper_image)
        self.commands: Consumer | None = None
        self.app = create_toolbox_app(self.agent, settings.internal_token, DockerStats(settings.docker_url))
        self.app.cleanup_ctx.append(self._lifespan)
        self._tasks: list[asyncio.Task[Any]] = []
        self.reconciled = asyncio.Event()
        self.sandbox_count = 0
        self.snapshot_refs: list[str] = []
        """Snapshot images this runner holds (refreshed with the activity report)."""

    async def report(self, fact: Any, *, msg_id: str) -> None:
        envelope = EventEnvelope(event_id=msg_id, aggregate_id=fact.sandbox_id,
                                 occurred_at=datetime.now(timezone.utc), payload=fact)
        await self.bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=msg_id)

    async def heartbeat(self) -> None:
        """Registration and liveness: nothing here waits on Docker, so a slow engine never lets the
        runner's key expire (the sandbox count is the one the observer loop last saw)."""
        beat = RunnerHeartbeat(runner_id=self.settings.runner_id, toolbox_url=self.settings.toolbox_url,
                               started_at=self.started_at, cpus=os.cpu_count() or 1, sandboxes=self.sandbox_count,
                               disk_limits=self.disk_limits, network_policy=self.network.enforced,
                               snapshots=self.snapshot_refs)
        await self.bus.kv_put(RUNNERS_BUCKET, self.settings.runner_id, codecs.encode(beat))

    async def report_busy(self) -> int:
        """Sandboxes running a job count as active, so their auto-stop timer never fires mid-job."""
        busy = 0
        now = datetime.now(timezone.utc).isoformat().encode()
        containers = await self.engine.list_managed(self.settings.runner_id)
        self.sandbox_count = len(containers)
        prefix = runner_image(self.settings.runner_id, "x:y").split("/")[0] + "/"
        self.snapshot_refs = [tag.removeprefix(prefix) for tag in await self.engine.tags_with_prefix(prefix)]
        self.oom.containers = containers
        if self.reconciled.is_set():  # reconciliation places its own rules first
            running = {c.sandbox_id for c in containers if c.running}
            await self.network.check(running)
            await self.network.sweep(running)
        for observed in containers:
            if not observed.running:
                continue
            try:
                running = await asyncio.wait_for(self.agent.activity(observed.sandbox_id), 2.0)
            except (AgentUnavailable, TimeoutError):
                continue
            if running:
                busy += 1
                await self.bus.kv_put(ACTIVITY_BUCKET, observed.sandbox_id, now)
        return busy

    async def _every(self, interval: float, step: Any, what: str) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", what)
            await asyncio.sleep(interval)

    async def reconcile(self) -> None:
        """Ask the api what this runner holds, then make the containers agree; retried until it answers."""
        request = codecs.encode(AssignmentsRequest(runner_id=self.settings.runner_id))
        while True:
            try:
                answer = codecs.runner_assignments.decode(await self.bus.request(RUNNER_ASSIGNMENTS, request, timeout=5))
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.info("waiting for the api to answer assignments (%s)", error)
                await asyncio.sleep(1.0)
        steps = await self.sandboxes.reconcile(answer, self.boot_id)
        log.info("reconciled %d sandboxes: %s", len(steps), {s.sandbox_id[:8]: s.action for s in steps})

    async def _reconcile_then_consume(self) -> None:
        await self.reconcile()
        self.reconciled.set()
        self.commands = self.bus.consume(stream=CMD_STREAM, durable=f"runner-{self.settings.runner_id}",
                                         filter_subject=runner_commands(self.settings.runner_id),
                                         handler=CommandDesk(self.sandboxes).handle,
                                         policy=ConsumerPolicy(ack_wait=10.0, max_ack_pending=1))
        await self.commands.start()

    async def start(self) -> None:
        self.agent.runs_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(build_zipapp, self.agent_dir / AGENT_FILE)
        self.agent_dir.chmod(0o755)
        await self.bus.connect()
        await self.bus.ensure_streams()
        await self.engine.ensure_network()
        await self.network.install()
        if not self.network.enforced:
            log.warning("sandbox network policy is NOT enforced (CORRAL_NETWORK_POLICY=off): sandboxes can reach "
                        "this host, its control plane and metadata addresses")
        self.disk_limits = await self.engine.disk_limits()
        log.info("sandbox disk sizes are %s", "enforced (storage_opt size)" if self.disk_limits
                 else "NOT enforced: this engine cannot bound a container's writable layer")
        await self.heartbeat()
        interval = self.settings.heartbeat_interval
        self._tasks = [asyncio.create_task(self._every(interval, self.heartbeat, "heartbeat"), name="heartbeats"),
                       asyncio.create_task(self._every(interval, self.report_busy, "activity report"), name="busy"),
                       asyncio.create_task(self._every(self.settings.oom_interval, self.oom.sweep, "oom watch"),
                                           name="oom"),
                       asyncio.create_task(self._reconcile_then_consume(), name="reconcile")]
        log.info("runner %s up (toolbox %s)", self.settings.runner_id, self.settings.toolbox_url)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.commands:
            await self.commands.stop()
        await self.bus.close()

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.stop()


def build(settings: Settings, *, bus: Bus | None = None, engine: ContainerEngine | None = None,
          firewall: Firewall | None = None) -> Runner:
    Path(settings.runner_dir).mkdir(parents=True, exist_ok=True)
    if firewall is None and settings.network_policy:
        iptables = IptablesFirewall()
        refusal = iptables.available()
        if refusal:
            raise SystemExit(f"cannot protect sandboxes' network: {refusal}. Run the runner as root on the Docker "
                             "host, or set CORRAL_NETWORK_POLICY=off where something else isolates sandboxes.")
        firewall = iptables
    return Runner(settings, bus or JetStreamBus(settings.nats_url, name=f"corral-runner-{settings.runner_id}"),
                  engine or DockerEngine(settings.docker_url), firewall)
