"""Use cases of the sandbox API: load, decide, record. Nothing here speaks HTTP or NATS."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from datetime import datetime, timezone
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from corral_contracts import sandbox as ev
from corral_contracts.runner import RunnerHeartbeat
from corral_contracts.snapshot import runner_image
from corral_contracts.volume import VolumeMount
from corral_eventstore import ConcurrencyConflict, EventLog, Recorded

from ..domain import guard
from ..domain import sandbox as domain
from ..domain.errors import Conflict, InvalidRequest, NotFound
from ..domain.names import NameSlot, name_key
from ..domain.scheduling import choose_runner
from ..domain.snapshot import usable
from . import listing
from .directory import SandboxDirectory
from .quotas import QuotaGate
from .snapshots import SnapshotService
from .volumes import VolumeService

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
SETTLED = frozenset({"started", "stopped", "error", "destroyed", "build_failed"})


class CreateRequest(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None = None
    snapshot: str | None = None
    user: str | None = None
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    public: bool = False
    target: str | None = None
    cpu: int | None = None
    gpu: int | None = None
    memory: int | None = None
    disk: int | None = None
    auto_stop_interval: int | None = None
    auto_archive_interval: int | None = None
    auto_delete_interval: int | None = None
    network_block_all: bool = False
    network_allow_list: list[str] = []
    volumes: list[VolumeMount] = []
    dockerfile: str | None = None
    """`buildInfo.dockerfileContent`: build (or reuse) a snapshot of this image first."""
    context_hashes: list[str] = []


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    default_cpu: int = 1
    default_memory: int = 1
    default_disk: int = 3
    default_image: str = "corral/sandbox:default"
    default_snapshot: str = "corral-default"
    default_user: str = "daytona"
    target: str = "local"


def fold(state: domain.Sandbox | None, event: Recorded) -> domain.Sandbox | None:
    return domain.evolve(state, event.payload, event.originator_version, event.timestamp)


class SandboxService:
    def __init__(self, *, event_log: EventLog, directory: SandboxDirectory,
                 runners: Callable[[], Awaitable[list[RunnerHeartbeat]]], recorded: Callable[[], None],
                 limits: Limits, quotas: QuotaGate, create_wait: float = 30.0,
                 report_activity: Callable[[str, datetime], Awaitable[None]] | None = None,
                 snapshots: SnapshotService | None = None, volumes: VolumeService | None = None):
        self._log = event_log
        self._directory = directory
        self._runners = runners
        self._recorded = recorded
        self._limits = limits
        self._quotas = quotas
        self._create_wait = create_wait
        self._report_activity = report_activity
        self._snapshots = snapshots
        self._volumes = volumes
        self.activity: dict[str, datetime] = {}
        """Last reported outside activity per sandbox (kept current by the supervisor's sweeps)."""
        self.related_streams: list[Callable[[str], list[uuid.UUID]]] = []
        """Other streams whose events belong in a sandbox's timeline (its SSH tokens and sessions)."""

    # --- reading ------------------------------------------------------------------------------

    async def runners(self) -> list[RunnerHeartbeat]:
        return await self._runners()

    async def _available_runners(self, wait: float = 10.0) -> list[RunnerHeartbeat]:
        """The live runners; when there is none (one restarting), wait a little before refusing."""
        deadline = asyncio.get_running_loop().time() + wait
        while not (runners := await self._runners()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.25)
        return runners

    def last_activity(self, sandbox: domain.Sandbox) -> datetime:
        reported = self.activity.get(sandbox.id)
        return max(sandbox.updated_at, reported) if reported else sandbox.updated_at

    async def touch(self, organization_id: str, id_or_name: str) -> None:
        """Keep-alive: counts as activity for the lifecycle timers."""
        sandbox = await self.get(organization_id, id_or_name)
        now = datetime.now(timezone.utc)
        self.activity[sandbox.id] = now
        if self._report_activity:
            await self._report_activity(sandbox.id, now)

    async def load(self, sandbox_id: str) -> domain.Sandbox | None:
        try:
            key = uuid.UUID(sandbox_id)
        except ValueError:
            return None
        return await asyncio.to_thread(self._log.load, key, fold)

    async def get(self, organization_id: str, id_or_name: str) -> domain.Sandbox:
        sandbox = await self.load(id_or_name)
        if sandbox is None:
            by_name = self._directory.names.get((organization_id, id_or_name))
            sandbox = await self.load(by_name) if by_name else None
        if sandbox is None or sandbox.organization_id != organization_id or sandbox.state == "destroyed":
            raise NotFound(f"Sandbox {id_or_name} not found")
        return sandbox

    def list(self, organization_id: str, query: listing.ListQuery) -> listing.Page:
        return listing.select(self._directory.sandboxes.values(), organization_id, query)

    async def history(self, organization_id: str, id_or_name: str) -> list[Recorded]:
        """The sandbox's own events, and those of its related streams, in time order."""
        sandbox = await self.get(organization_id, id_or_name)
        streams = [uuid.UUID(sandbox.id), *(s for related in self.related_streams for s in related(sandbox.id))]

        def load() -> list[Recorded]:
            events = [e for stream in streams for e in self._log.history(stream)]
            return sorted(events, key=lambda e: e.timestamp) if len(streams) > 1 else events

        return await asyncio.to_thread(load)

    # --- writing ------------------------------------------------------------------------------

    def _resources(self, request: CreateRequest) -> dict[str, int]:
        limits = self._limits
        values = {"cpu": request.cpu or limits.default_cpu, "memory": request.memory or limits.default_memory,
                  "disk": request.disk or limits.default_disk}
        if request.gpu:
            raise InvalidRequest("GPU sandboxes are not supported by this installation")
        return values

    async def create(self, organization_id: str, request: CreateRequest, meta: dict[str, str]) -> domain.Sandbox:
        """From the default snapshot, a named snapshot (its resources; sending resources too is a 400, as in
        Daytona), or `buildInfo` (a snapshot built or reused by content hash; the sandbox waits for it in
        `pending_build` and the call answers at once)."""
        limits = self._limits
        resources = self._resources(request)
        for interval in (request.auto_stop_interval, request.auto_archive_interval):
            if interval is not None and interval < 0:
                raise InvalidRequest("auto-stop and auto-archive intervals must not be negative")
        sandbox_id = str(uuid.uuid4())
        name = request.name or sandbox_id
        if not NAME.match(name):
            raise InvalidRequest("name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        volumes = await self._volumes.mounts(organization_id, request.volumes) if (
            self._volumes and request.volumes) else []
        if request.volumes and self._volumes is None:
            raise InvalidRequest("volumes are not available")
        runners = await self._available_runners()
        image, snapshot_name, snapshot_id, snapshot_ref = limits.default_image, limits.default_snapshot, "", ""
        build: ev.BuildInfo | None = None
        more: list[tuple[uuid.UUID, int, list[Any]]] = []
        pending_build = False
        snapshot = None
        if request.dockerfile is not None:
            if request.snapshot:
                raise InvalidRequest("give either snapshot or buildInfo, not both")
            if not request.dockerfile.strip() or self._snapshots is None:
                raise InvalidRequest("buildInfo.dockerfileContent is empty")
            snapshot, more = self._snapshots.for_build(organization_id, request.dockerfile, request.context_hashes,
                                                       resources)
            if snapshot is None:
                created = more[0][2][0]
                snapshot_id, snapshot_ref, snapshot_name, state = created.snapshot_id, created.ref, created.name, "pending"
            else:
                snapshot_id, snapshot_ref, snapshot_name = snapshot.id, snapshot.ref, snapshot.name
                state = "pending" if more else snapshot.state
            pending_build = state != "active"
            build = ev.BuildInfo(dockerfile=request.dockerfile, context_hashes=request.context_hashes,
                                 snapshot_ref=snapshot_ref)
        elif request.snapshot not in (None, "", limits.default_snapshot, limits.default_image):
            snapshot = self._snapshots.find(organization_id, request.snapshot) if self._snapshots else None
            if snapshot is None:
                raise NotFound(f"Snapshot {request.snapshot} not found")
            if request.cpu or request.memory or request.disk or request.gpu:
                raise InvalidRequest("Cannot specify sandbox resources when using a snapshot")
            usable(snapshot)
            resources = {"cpu": snapshot.cpu, "memory": snapshot.memory, "disk": snapshot.disk}
            snapshot_id, snapshot_name = snapshot.id, snapshot.name
            if snapshot.source == "platform":
                image = snapshot.image_name
            else:
                snapshot_ref = snapshot.ref
        self._quotas.check_size(organization_id, resources["cpu"], resources["memory"], resources["disk"])
        if snapshot_ref:
            runner_id = choose_runner(runners, dict(self._directory.placed), snapshot_ref)
            image = runner_image(runner_id, snapshot_ref)
        else:
            runner_id = choose_runner(runners, dict(self._directory.placed))
        created_event = ev.SandboxCreated(
            sandbox_id=sandbox_id, organization_id=organization_id, name=name, runner_id=runner_id,
            image=image, snapshot=snapshot_name, user=request.user or limits.default_user,
            env=request.env, labels=request.labels, public=request.public, target=request.target or limits.target,
            gpu=0, **resources,
            auto_stop_interval=15 if request.auto_stop_interval is None else request.auto_stop_interval,
            auto_archive_interval=10080 if request.auto_archive_interval is None else (
                min(request.auto_archive_interval, domain.ARCHIVE_MAX_MINUTES) or domain.ARCHIVE_MAX_MINUTES),
            auto_delete_interval=-1 if request.auto_delete_interval is None else request.auto_delete_interval,
            network_block_all=request.network_block_all, network_allow_list=request.network_allow_list,
            preview_token=secrets.token_hex(16), snapshot_id=snapshot_id, snapshot_ref=snapshot_ref, volumes=volumes,
            build=build, pending_build=pending_build,
        )
        slot_key = name_key(organization_id, name)
        claim = ev.SandboxNameClaimed(organization_id=organization_id, name=name, sandbox_id=sandbox_id)
        for _ in range(20):
            slot = await asyncio.to_thread(self._log.load, slot_key, lambda s, e: (s or NameSlot()).apply(e.payload, e.originator_version))
            if slot is not None and slot.holder is not None:
                raise Conflict(f"Sandbox with name {name} already exists")
            try:
                await self._quotas.admit(organization_id, None, [created_event], lambda quota: asyncio.to_thread(
                    self._log.append, uuid.UUID(sandbox_id), 0, [created_event], meta,
                    (slot_key, slot.version if slot else 0, [claim]), *more, *quota))
                break
            except ConcurrencyConflict:
                if more:  # an identical build was asked for at the same moment: take that one
                    return await self.create(organization_id, request, meta)
                continue  # the name was taken meanwhile (409 above), or another replica admitted first
        else:
            raise Conflict(f"Sandbox {name} could not be admitted: too many concurrent changes; try again")
        self._recorded()
        await self._directory.catch_up()
        if not pending_build:
            await self._directory.wait_for(
                lambda: self._directory.sandboxes[sandbox_id].state in SETTLED, self._create_wait)
        return await self.get(organization_id, sandbox_id)

    async def follow_build(self, sandbox: domain.Sandbox, meta: dict[str, str]) -> None:
        """Move a sandbox waiting for its snapshot along with the build (idempotent)."""
        snapshot = self._directory.snapshots.get(sandbox.capturing or sandbox.snapshot_id)
        state = snapshot.state if snapshot else "removed"
        reason = snapshot.error_reason if snapshot else "the snapshot was removed"
        await self.apply(sandbox, lambda s: domain.snapshot_progress(
            s, state, reason, s.image, s.snapshot_ref), meta)

    async def _decide(self, organization_id: str, id_or_name: str,
                      decide: Callable[[domain.Sandbox], list[Any]], meta: dict[str, str]) -> domain.Sandbox:
        for _ in range(10):
            sandbox = await self.get(organization_id, id_or_name)
            events = decide(sandbox)
            if not events:
                return sandbox
            sandbox_events = [e for e in events if getattr(e, "sandbox_id", None) and not isinstance(
                e, ev.SandboxNameReleased)]
            released = [e for e in events if isinstance(e, ev.SandboxNameReleased)]
            more = []
            if released:
                slot_key = name_key(sandbox.organization_id, sandbox.name)
                slot = await asyncio.to_thread(
                    self._log.load, slot_key, lambda s, e: (s or NameSlot()).apply(e.payload, e.originator_version))
                if slot is not None and slot.holder == sandbox.id:
                    more.append((slot_key, slot.version, released))
            try:
                await self._quotas.admit(sandbox.organization_id, sandbox, sandbox_events, lambda quota: asyncio.to_thread(
                    self._log.append, uuid.UUID(sandbox.id), sandbox.version, sandbox_events, meta, *more, *quota))
            except ConcurrencyConflict:
                continue
            self._recorded()
            await self._directory.catch_up()
            return await self.load(sandbox.id) or sandbox
        raise Conflict(f"Sandbox {id_or_name} is changing too quickly; try again")

    async def start(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> domain.Sandbox:
        return await self._decide(organization_id, id_or_name, domain.request_start, meta)

    async def stop(self, organization_id: str, id_or_name: str, force: bool, meta: dict[str, str]) -> domain.Sandbox:
        """Ephemeral sandboxes (auto-delete 0) are destroyed instead, as Daytona does."""
        def decide(s: domain.Sandbox) -> list[Any]:
            if s.auto_delete_interval == 0 and s.state in ("started", "error"):
                return domain.request_destroy(s, reason="ephemeral-stop")
            return domain.request_stop(s, force)
        return await self._decide(organization_id, id_or_name, decide, meta)

    async def archive(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> domain.Sandbox:
        return await self._decide(organization_id, id_or_name, domain.request_archive, meta)

    async def recover(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> domain.Sandbox:
        return await self._decide(organization_id, id_or_name, domain.request_recover, meta)

    async def resize(self, organization_id: str, id_or_name: str, cpu: int | None, memory: int | None,
                     meta: dict[str, str]) -> domain.Sandbox:
        def decide(s: domain.Sandbox) -> list[Any]:
            self._quotas.check_size(s.organization_id, s.cpu if cpu is None else cpu,
                                    s.memory if memory is None else memory, None)
            quota = self._quotas.quota(s.organization_id)
            return domain.request_resize(s, cpu, memory, quota.max_cpu_per_sandbox, quota.max_memory_per_sandbox)
        return await self._decide(organization_id, id_or_name, decide, meta)

    async def set_timers(self, organization_id: str, id_or_name: str, meta: dict[str, str],
                         **minutes: int | None) -> domain.Sandbox:
        return await self._decide(organization_id, id_or_name, lambda s: domain.set_timers(s, **minutes), meta)

    async def apply(self, sandbox: domain.Sandbox, decide: Callable[[domain.Sandbox], list[Any]],
                    meta: dict[str, str]) -> domain.Sandbox:
        """A decision taken by the platform itself (timers, deadlines) rather than a caller."""
        return await self._decide(sandbox.organization_id, sandbox.id, decide, meta)

    async def destroy(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> domain.Sandbox:
        return await self._decide(organization_id, id_or_name, domain.request_destroy, meta)

    async def replace_labels(self, organization_id: str, id_or_name: str, labels: dict[str, str],
                             meta: dict[str, str]) -> domain.Sandbox:
        return await self._decide(organization_id, id_or_name, lambda s: domain.replace_labels(s, labels), meta)

    async def signing_key(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> str:
        """The key of the sandbox's signed file URLs, issued (and recorded) on first request."""
        candidate = secrets.token_urlsafe(32)
        sandbox = await self._decide(organization_id, id_or_name,
                                     lambda s: domain.issue_signing_key(s, candidate), meta)
        return sandbox.signing_key

    async def rotate_signing_key(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> str:
        """A new key: URLs signed with the previous one stop working."""
        candidate = secrets.token_urlsafe(32)
        sandbox = await self._decide(organization_id, id_or_name,
                                     lambda s: domain.rotate_signing_key(s, candidate), meta)
        return sandbox.signing_key

    async def network_settings(self, organization_id: str, id_or_name: str, block_all: bool | None,
                               allow_list: list[str] | None, meta: dict[str, str]) -> domain.Sandbox:
        """Change the network policy live; answers once the runner enforces it (or after a bounded wait,
        with the policy still pending)."""
        sandbox = await self._decide(organization_id, id_or_name,
                                     lambda s: guard.request_network_settings(s, block_all, allow_list), meta)
        if guard.network_pending(sandbox):
            await self._directory.wait_for(
                lambda: not guard.network_pending(self._directory.sandboxes[sandbox.id]), self._create_wait)
        return await self.get(organization_id, sandbox.id)

    async def observe(self, fact: Any, meta: dict[str, str]) -> None:
        """Record what a runner saw. Idempotent: a repeated or stale fact records nothing."""
        for _ in range(10):
            sandbox = await self.load(fact.sandbox_id)
            if sandbox is None:
                return
            events = domain.observe(sandbox, fact)
            if not events:
                return
            try:
                await asyncio.to_thread(self._log.append, uuid.UUID(sandbox.id), sandbox.version, events, meta)
            except ConcurrencyConflict:
                continue
            self._recorded()
            await self._directory.catch_up()
            return
        raise ConcurrencyConflict(f"could not record {type(fact).__name__} for {fact.sandbox_id}")
