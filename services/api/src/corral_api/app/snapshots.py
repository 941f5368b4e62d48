"""Use cases of snapshots: create (from an image, a Dockerfile or a sandbox), list, get, activate,
deactivate, remove; the builds that sandboxes with `buildInfo` wait for. Load, decide, record."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import msgspec

from corral_contracts import snapshot as ev
from corral_contracts.snapshot import snapshot_image
from corral_eventstore import ConcurrencyConflict, EventLog, Recorded

from ..domain import snapshot as domain
from ..domain.errors import Conflict, InvalidRequest, NotFound
from ..domain.names import NameSlot
from ..domain.sandbox import start_snapshot
from ..domain.snapshot import Snapshot
from .directory import SandboxDirectory

NAME_MAX = 255


class SnapshotRequest(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    image_name: str | None = None
    dockerfile: str | None = None
    context_hashes: list[str] = []
    entrypoint: list[str] = []
    cpu: int | None = None
    gpu: int | None = None
    memory: int | None = None
    disk: int | None = None


class SnapshotLimits(msgspec.Struct, frozen=True, kw_only=True):
    default_cpu: int = 1
    default_memory: int = 1
    default_disk: int = 3
    max_cpu: int = 4
    max_memory: int = 8
    max_disk: int = 10
    default_snapshot: str = "corral-default"
    default_image: str = "corral/sandbox:default"


def fold(state: Snapshot | None, event: Recorded) -> Snapshot | None:
    return domain.evolve(state, event.payload, event.originator_version, event.timestamp)


def snapshot_name_key(organization_id: str, name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"corral:snapshot-name:{organization_id}:{name}")


def build_key(organization_id: str, digest: str) -> uuid.UUID:
    """A build's snapshot id follows from its content: two identical `buildInfo`s meet at one aggregate."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"corral:snapshot-build:{organization_id}:{digest}")


def _slot(state: NameSlot | None, event: Recorded) -> NameSlot:
    slot = state or NameSlot()
    payload = event.payload
    slot.holder = payload.snapshot_id if isinstance(payload, ev.SnapshotNameClaimed) else (
        None if isinstance(payload, ev.SnapshotNameReleased) else slot.holder)
    slot.version = event.originator_version
    return slot


class SnapshotService:
    def __init__(self, *, event_log: EventLog, directory: SandboxDirectory, recorded: Callable[[], None],
                 limits: SnapshotLimits = SnapshotLimits()):
        self._log = event_log
        self._directory = directory
        self._recorded = recorded
        self.limits = limits

    # --- reading ------------------------------------------------------------------------------

    async def load(self, snapshot_id: str) -> Snapshot | None:
        try:
            key = uuid.UUID(snapshot_id)
        except ValueError:
            return None
        snapshot = await asyncio.to_thread(self._log.load, key, fold)
        return None if snapshot is None or snapshot.state == "removed" else snapshot

    def find(self, organization_id: str, id_or_name: str) -> Snapshot | None:
        """From the read model: by id, by name in the organization, or a general snapshot's name."""
        d = self._directory
        snapshot = d.snapshots.get(id_or_name)
        if snapshot is None:
            by_name = d.snapshot_names.get((organization_id, id_or_name))
            snapshot = d.snapshots.get(by_name) if by_name else None
        if snapshot is None:
            snapshot = next((s for s in d.snapshots.values() if s.general and s.name == id_or_name), None)
        if snapshot is None or not (snapshot.organization_id == organization_id or snapshot.general):
            return None
        return snapshot

    def get(self, organization_id: str, id_or_name: str) -> Snapshot:
        snapshot = self.find(organization_id, id_or_name)
        if snapshot is None:
            raise NotFound(f"Snapshot {id_or_name} not found")
        return snapshot

    def last_used(self, snapshot: Snapshot) -> datetime | None:
        return self._directory.snapshot_used.get(snapshot.id)

    def list(self, organization_id: str, page: int, limit: int, name: str | None = None,
             sort: str = "lastUsedAt", order: str = "desc") -> tuple[list[Snapshot], int, int]:
        if page < 1 or not 1 <= limit <= 200:
            raise InvalidRequest("page must be ≥ 1 and limit 1-200")
        if sort not in ("name", "state", "lastUsedAt", "createdAt") or order not in ("asc", "desc"):
            raise InvalidRequest("sort must be name, state, lastUsedAt or createdAt; order asc or desc")
        items = [s for s in self._directory.snapshots.values()
                 if (s.organization_id == organization_id or s.general) and not s.hidden
                 and (not name or name.lower() in s.name.lower())]
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        keys: dict[str, Callable[[Snapshot], Any]] = {
            "name": lambda s: s.name, "state": lambda s: s.state, "createdAt": lambda s: s.created_at,
            "lastUsedAt": lambda s: (self.last_used(s) or epoch, s.created_at),
        }
        items.sort(key=keys[sort], reverse=order == "desc")
        total = len(items)
        return items[(page - 1) * limit: page * limit], total, max(1, math.ceil(total / limit))

    # --- writing ------------------------------------------------------------------------------

    def _resources(self, request: SnapshotRequest) -> dict[str, int]:
        lim = self.limits
        values = {"cpu": request.cpu or lim.default_cpu, "memory": request.memory or lim.default_memory,
                  "disk": request.disk or lim.default_disk}
        for label, top in (("cpu", lim.max_cpu), ("memory", lim.max_memory), ("disk", lim.max_disk)):
            if not 1 <= values[label] <= top:
                raise InvalidRequest(f"{label} must be between 1 and {top}, got {values[label]}")
        if request.gpu:
            raise InvalidRequest("GPU snapshots are not supported by this installation")
        return values

    async def create(self, organization_id: str, request: SnapshotRequest, meta: dict[str, str]) -> Snapshot:
        name = request.name.strip()
        if not name or len(name) > NAME_MAX or "\x00" in name:
            raise InvalidRequest("name is required (at most 255 characters)")
        if bool(request.image_name) == bool(request.dockerfile):
            raise InvalidRequest("give either imageName or buildInfo.dockerfileContent")
        if request.dockerfile and not request.dockerfile.strip():
            raise InvalidRequest("buildInfo.dockerfileContent is empty")
        if request.image_name and (len(request.image_name) > 512 or any(c.isspace() for c in request.image_name)):
            raise InvalidRequest(f"imageName {request.image_name!r} is not an image reference")
        resources = self._resources(request)
        snapshot_id = str(uuid.uuid4())
        digest = domain.build_hash(request.dockerfile, request.context_hashes) if request.dockerfile else ""
        created = ev.SnapshotCreated(
            snapshot_id=snapshot_id, organization_id=organization_id, name=name,
            ref=snapshot_image(digest or snapshot_id.replace("-", "")),
            source="dockerfile" if request.dockerfile else "image", image_name=request.image_name or "",
            dockerfile=request.dockerfile or "", context_hashes=request.context_hashes, build_hash=digest,
            entrypoint=request.entrypoint, **resources)
        await self._record_named(created, meta)
        return await self._loaded(snapshot_id)

    async def capture(self, organization_id: str, sandbox: Any, name: str, meta: dict[str, str]) -> Snapshot:
        """A snapshot of a sandbox's filesystem (`POST /sandbox/{id}/snapshot`); the sandbox is `snapshotting`
        until it is done (recorded in the same transaction)."""
        if not name.strip():
            raise InvalidRequest("name is required")
        snapshot_id = str(uuid.uuid4())
        started = start_snapshot(sandbox, snapshot_id)
        created = ev.SnapshotCreated(
            snapshot_id=snapshot_id, organization_id=organization_id, name=name.strip(),
            ref=snapshot_image(snapshot_id.replace("-", "")), source="sandbox", source_sandbox_id=sandbox.id,
            cpu=sandbox.cpu, memory=sandbox.memory, disk=sandbox.disk)
        await self._record_named(created, meta, (uuid.UUID(sandbox.id), sandbox.version, started))
        return await self._loaded(snapshot_id)

    async def _record_named(self, created: ev.SnapshotCreated, meta: dict[str, str], *more: Any) -> None:
        org, name = created.organization_id, created.name
        if self.find(org, name) is not None and self.find(org, name).general:  # type: ignore[union-attr]
            raise Conflict(f"Snapshot with name {name} already exists")
        key = snapshot_name_key(org, name)
        slot = await asyncio.to_thread(self._log.load, key, _slot)
        if slot is not None and slot.holder is not None:
            raise Conflict(f"Snapshot with name {name} already exists")
        claim = ev.SnapshotNameClaimed(organization_id=org, name=name, snapshot_id=created.snapshot_id)
        try:
            await asyncio.to_thread(self._log.append, uuid.UUID(created.snapshot_id), 0, [created], meta,
                                    (key, slot.version if slot else 0, [claim]), *more)
        except ConcurrencyConflict:
            raise Conflict(f"Snapshot with name {name} already exists, or the sandbox changed meanwhile") from None
        self._recorded()
        await self._directory.catch_up()

    async def _loaded(self, snapshot_id: str) -> Snapshot:
        snapshot = await self.load(snapshot_id)
        assert snapshot is not None
        return snapshot

    def for_build(self, organization_id: str, dockerfile: str, context_hashes: list[str],
                  resources: dict[str, int]) -> tuple[Snapshot | None, list[tuple[uuid.UUID, int, list[Any]]]]:
        """The snapshot of a sandbox's `buildInfo`: the existing one with the same content (reused; built
        again if its last build failed), else the events that create it, for the caller to record with the
        sandbox in one transaction."""
        digest = domain.build_hash(dockerfile, context_hashes)
        existing_id = self._directory.builds.get((organization_id, digest))
        existing = self._directory.snapshots.get(existing_id) if existing_id else None
        if existing is not None and existing.state not in ("removing", "inactive"):
            retry = domain.retry_build(existing)
            return existing, ([(uuid.UUID(existing.id), existing.version, retry)] if retry else [])
        snapshot_id = str(build_key(organization_id, digest))
        created = ev.SnapshotCreated(
            snapshot_id=snapshot_id, organization_id=organization_id, name=f"build-{digest[:16]}",
            ref=snapshot_image(digest), source="dockerfile", dockerfile=dockerfile,
            context_hashes=context_hashes, build_hash=digest, hidden=True, **resources)
        return None, [(uuid.UUID(snapshot_id), 0, [created])]

    async def _decide(self, organization_id: str, id_or_name: str, decide: Callable[[Snapshot], list[Any]],
                      meta: dict[str, str], name_released: bool = False) -> Snapshot:
        for _ in range(10):
            found = self.get(organization_id, id_or_name)
            if found.organization_id != organization_id:
                raise NotFound(f"Snapshot {id_or_name} not found")  # a general snapshot is read-only
            snapshot = await self.load(found.id)
            if snapshot is None:
                raise NotFound(f"Snapshot {id_or_name} not found")
            events = decide(snapshot)
            if not events:
                return snapshot
            own = [e for e in events if not isinstance(e, ev.SnapshotNameReleased)]
            more = []
            released = [e for e in events if isinstance(e, ev.SnapshotNameReleased)]
            if released and not snapshot.hidden:
                key = snapshot_name_key(snapshot.organization_id, snapshot.name)
                slot = await asyncio.to_thread(self._log.load, key, _slot)
                if slot is not None and slot.holder == snapshot.id:
                    more.append((key, slot.version, released))
            try:
                await asyncio.to_thread(self._log.append, uuid.UUID(snapshot.id), snapshot.version, own, meta, *more)
            except ConcurrencyConflict:
                continue
            self._recorded()
            await self._directory.catch_up()
            return await self.load(snapshot.id) or snapshot
        raise Conflict(f"Snapshot {id_or_name} is changing too quickly; try again")

    async def activate(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> Snapshot:
        return await self._decide(organization_id, id_or_name, domain.activate, meta)

    async def deactivate(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> Snapshot:
        return await self._decide(organization_id, id_or_name, domain.deactivate, meta)

    async def remove(self, organization_id: str, id_or_name: str, meta: dict[str, str]) -> Snapshot:
        return await self._decide(organization_id, id_or_name, lambda s: domain.request_remove(
            s, self._directory.users_of_snapshot(s.id)), meta)

    async def apply(self, snapshot_id: str, decide: Callable[[Snapshot], list[Any]], meta: dict[str, str]) -> None:
        """A decision of the platform itself (facts, deadlines). Idempotent."""
        for _ in range(10):
            snapshot = await self.load(snapshot_id)
            if snapshot is None:
                return
            events = decide(snapshot)
            if not events:
                return
            try:
                await asyncio.to_thread(self._log.append, uuid.UUID(snapshot.id), snapshot.version, events, meta)
            except ConcurrencyConflict:
                continue
            self._recorded()
            await self._directory.catch_up()
            return
        raise ConcurrencyConflict(f"could not record a change of snapshot {snapshot_id}")

    async def observe(self, fact: Any, meta: dict[str, str]) -> None:
        await self.apply(fact.snapshot_id, lambda s: domain.observe(s, fact), meta)

    async def ensure_default(self) -> None:
        """The platform's default snapshot (`general`, every organization sees it): its image is built on every
        runner host by the installer (`make run`), so it is active from the start, with no build."""
        lim = self.limits
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"corral:snapshot-default:{lim.default_snapshot}")
        if str(key) in self._directory.snapshots:
            return
        created = ev.SnapshotCreated(
            snapshot_id=str(key), organization_id="", name=lim.default_snapshot, ref=lim.default_image,
            source="platform", image_name=lim.default_image, general=True, cpu=lim.default_cpu,
            memory=lim.default_memory, disk=lim.default_disk)
        try:
            await asyncio.to_thread(self._log.append, key, 0, [created], {"Corral-Actor": "bootstrap"})
        except ConcurrencyConflict:
            pass
        self._recorded()
        await self._directory.catch_up()
