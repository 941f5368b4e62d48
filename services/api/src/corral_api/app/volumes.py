"""Use cases of volumes: create, list, get (by id or name), delete; the mounts a new sandbox asks for."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from corral_contracts import volume as ev
from corral_contracts.volume import VolumeMount
from corral_eventstore import ConcurrencyConflict, EventLog, Recorded

from ..domain import volume as domain
from ..domain.errors import Conflict, InvalidRequest, NotFound
from ..domain.names import NameSlot
from ..domain.volume import Volume
from .directory import SandboxDirectory


def fold(state: Volume | None, event: Recorded) -> Volume | None:
    return domain.evolve(state, event.payload, event.originator_version, event.timestamp)


def volume_name_key(organization_id: str, name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"corral:volume-name:{organization_id}:{name}")


def _slot(state: NameSlot | None, event: Recorded) -> NameSlot:
    slot = state or NameSlot()
    payload = event.payload
    slot.holder = payload.volume_id if isinstance(payload, ev.VolumeNameClaimed) else (
        None if isinstance(payload, ev.VolumeNameReleased) else slot.holder)
    slot.version = event.originator_version
    return slot


class VolumeService:
    def __init__(self, *, event_log: EventLog, directory: SandboxDirectory, recorded: Callable[[], None],
                 ready_wait: float = 30.0):
        self._log = event_log
        self._directory = directory
        self._recorded = recorded
        self._ready_wait = ready_wait

    async def load(self, volume_id: str) -> Volume | None:
        try:
            key = uuid.UUID(volume_id)
        except ValueError:
            return None
        return await asyncio.to_thread(self._log.load, key, fold)

    def get(self, organization_id: str, volume_id: str) -> Volume:
        volume = self._directory.volumes.get(volume_id)
        if volume is None or volume.organization_id != organization_id or volume.state == "deleted":
            raise NotFound(f"Volume {volume_id} not found")
        return volume

    def by_name(self, organization_id: str, name: str) -> Volume:
        volume_id = self._directory.volume_names.get((organization_id, name))
        if volume_id is None:
            raise NotFound(f"Volume with name {name} not found")
        return self.get(organization_id, volume_id)

    def list(self, organization_id: str, include_deleted: bool = False) -> list[Volume]:
        items = [v for v in self._directory.volumes.values() if v.organization_id == organization_id
                 and (include_deleted or v.state != "deleted")]
        return sorted(items, key=lambda v: v.created_at, reverse=True)

    async def create(self, organization_id: str, name: str | None, meta: dict[str, str]) -> Volume:
        volume_id = str(uuid.uuid4())
        name = name or volume_id
        domain.check_name(name)
        key = volume_name_key(organization_id, name)
        slot = await asyncio.to_thread(self._log.load, key, _slot)
        if slot is not None and slot.holder is not None:
            raise Conflict(f"Volume with name {name} already exists")
        created = ev.VolumeCreated(volume_id=volume_id, organization_id=organization_id, name=name)
        claim = ev.VolumeNameClaimed(organization_id=organization_id, name=name, volume_id=volume_id)
        try:
            await asyncio.to_thread(self._log.append, uuid.UUID(volume_id), 0, [created], meta,
                                    (key, slot.version if slot else 0, [claim]))
        except ConcurrencyConflict:
            raise Conflict(f"Volume with name {name} already exists") from None
        self._recorded()
        await self._directory.catch_up()
        return self.get(organization_id, volume_id)

    async def delete(self, organization_id: str, volume_id: str, meta: dict[str, str]) -> Volume:
        for _ in range(10):
            self.get(organization_id, volume_id)
            volume = await self.load(volume_id)
            assert volume is not None
            events = domain.request_delete(volume, self._directory.users_of_volume(volume.id))
            if not events:
                return volume
            own = [e for e in events if not isinstance(e, ev.VolumeNameReleased)]
            released = [e for e in events if isinstance(e, ev.VolumeNameReleased)]
            key = volume_name_key(volume.organization_id, volume.name)
            slot = await asyncio.to_thread(self._log.load, key, _slot)
            more = [(key, slot.version, released)] if slot is not None and slot.holder == volume.id else []
            try:
                await asyncio.to_thread(self._log.append, uuid.UUID(volume.id), volume.version, own, meta, *more)
            except ConcurrencyConflict:
                continue
            self._recorded()
            await self._directory.catch_up()
            return await self.load(volume.id) or volume
        raise Conflict(f"Volume {volume_id} is changing too quickly; try again")

    async def apply(self, volume_id: str, decide: Callable[[Volume], list[Any]], meta: dict[str, str]) -> None:
        for _ in range(10):
            volume = await self.load(volume_id)
            if volume is None:
                return
            events = decide(volume)
            if not events:
                return
            try:
                await asyncio.to_thread(self._log.append, uuid.UUID(volume.id), volume.version, events, meta)
            except ConcurrencyConflict:
                continue
            self._recorded()
            await self._directory.catch_up()
            return

    async def observe(self, fact: Any, meta: dict[str, str]) -> None:
        await self.apply(fact.volume_id, lambda v: domain.observe(v, fact), meta)

    async def mounts(self, organization_id: str, requested: list[VolumeMount]) -> list[VolumeMount]:
        """The mounts of a new sandbox, checked: volumes of this organization (by id or name), ready (a volume
        just created is waited for, briefly), distinct mount paths."""
        result: list[VolumeMount] = []
        for mount in requested:
            checked = domain.check_mount(mount.mount_path, mount.subpath)
            assert checked is not None
            try:
                volume = self.get(organization_id, mount.volume_id)
            except NotFound:
                volume = self.by_name(organization_id, mount.volume_id)
            if volume.state in ("pending_create", "creating"):
                await self._directory.wait_for(
                    lambda: self._directory.volumes[volume.id].state not in ("pending_create", "creating"),
                    self._ready_wait)
                volume = self.get(organization_id, volume.id)
            if volume.state != "ready":
                raise InvalidRequest(f"Volume {volume.name} is {volume.state}"
                                     + (f": {volume.error_reason}" if volume.error_reason else ""))
            if any(m.mount_path == checked.mount_path for m in result):
                raise InvalidRequest(f"two volumes are mounted at {checked.mount_path}")
            result.append(VolumeMount(volume_id=volume.id, mount_path=checked.mount_path, subpath=checked.subpath))
        return result
