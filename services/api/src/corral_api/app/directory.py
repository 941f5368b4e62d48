"""The sandbox directory: the api's read model, folded from the event log.

It tails the notification log (woken by local writes, polling otherwise) and can be rebuilt from
zero at any time, so the log stays the truth. Waiters (`wait_for`) block on its progress instead of
polling, which is how `POST /sandbox` waits for `started`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from corral_contracts import sandbox as ev
from corral_contracts import snapshot as snev
from corral_contracts import volume as vev
from corral_eventstore import EventLog, LogTail, Recorded

from ..domain import snapshot as snapshot_domain
from ..domain import volume as volume_domain
from ..domain.sandbox import Sandbox, evolve
from .audit import AuditTrail
from .identity import ApiKeyEntry, IdentityView
from .quotas import UsageView
from ..domain.snapshot import Snapshot
from ..domain.volume import Volume

__all__ = ["ApiKeyEntry", "SandboxDirectory"]


class SandboxDirectory:
    def __init__(self, event_log: EventLog, *, poll_interval: float = 0.5):
        self._log = event_log
        self.position = 0
        self.folded = 0
        """How many events have been folded (positions may have gaps)."""
        self.sandboxes: dict[str, Sandbox] = {}
        self.names: dict[tuple[str, str], str] = {}
        self.identity = IdentityView()
        """Organizations and API keys."""
        self.api_keys: dict[str, ApiKeyEntry] = self.identity.keys
        self.audit = AuditTrail()
        self.usage = UsageView()
        """Each organization's resource usage, for quotas."""
        self.usage.attach(self.sandboxes)
        self.placed: Counter[str] = Counter()
        self.snapshots: dict[str, Snapshot] = {}
        self.snapshot_names: dict[tuple[str, str], str] = {}
        self.builds: dict[tuple[str, str], str] = {}
        """(organization, build hash) -> the snapshot built from that Dockerfile and context."""
        self.snapshot_used: dict[str, Any] = {}
        """Snapshot id -> when a sandbox last started from it (`lastUsedAt`)."""
        self.volumes: dict[str, Volume] = {}
        self.volume_names: dict[tuple[str, str], str] = {}
        self.listeners: list[Callable[[Sandbox | None, Sandbox], None]] = [self.usage.changed]
        """Told of every sandbox change as it is folded (after start-up's initial catch-up too)."""
        self.projections: list[Callable[[Recorded], None]] = []
        """Other read models folded from the same log (webhook endpoints, SSH access): told of every recorded
        event, in log order."""
        self._changed = asyncio.Condition()
        self._tail = LogTail("sandbox-directory", self._follow_step, poll_interval=poll_interval)
        self._lock = asyncio.Lock()

    # --- folding ------------------------------------------------------------------------------

    def apply(self, event: Recorded) -> None:
        for projection in self.projections:
            projection(event)
        payload = event.payload
        if self.identity.apply(event) or self.audit.apply(event) or self.usage.apply(event):
            return
        if isinstance(payload, ev.SandboxNameClaimed):
            self.names[(payload.organization_id, payload.name)] = payload.sandbox_id
            return
        if isinstance(payload, ev.SandboxNameReleased):
            if self.names.get((payload.organization_id, payload.name)) == payload.sandbox_id:
                del self.names[(payload.organization_id, payload.name)]
            return
        if isinstance(payload, snev.SnapshotNameClaimed):
            self.snapshot_names[(payload.organization_id, payload.name)] = payload.snapshot_id
            return
        if isinstance(payload, snev.SnapshotNameReleased):
            if self.snapshot_names.get((payload.organization_id, payload.name)) == payload.snapshot_id:
                del self.snapshot_names[(payload.organization_id, payload.name)]
            return
        if isinstance(payload, vev.VolumeNameClaimed):
            self.volume_names[(payload.organization_id, payload.name)] = payload.volume_id
            return
        if isinstance(payload, vev.VolumeNameReleased):
            if self.volume_names.get((payload.organization_id, payload.name)) == payload.volume_id:
                del self.volume_names[(payload.organization_id, payload.name)]
            return
        snapshot_id = getattr(payload, "snapshot_id", None)
        if snapshot_id is not None and not hasattr(payload, "sandbox_id"):
            self._apply_snapshot(snapshot_id, event)
            return
        volume_id = getattr(payload, "volume_id", None)
        if volume_id is not None:
            volume = volume_domain.evolve(self.volumes.get(volume_id), payload, event.originator_version,
                                          event.timestamp)
            if volume is not None:
                self.volumes[volume_id] = volume
            return
        sandbox_id = getattr(payload, "sandbox_id", None)
        if sandbox_id is None or getattr(type(payload), "__aggregate__", "sandbox") != "sandbox":
            return
        if isinstance(payload, ev.SandboxCreated):
            if payload.snapshot_id:
                self.snapshot_used[payload.snapshot_id] = event.timestamp
            for mount in payload.volumes:
                if mount.volume_id in self.volumes:
                    self.volumes[mount.volume_id] = msgspec.structs.replace(
                        self.volumes[mount.volume_id], last_used_at=event.timestamp)
        before = self.sandboxes.get(sandbox_id)
        after = evolve(before, payload, event.originator_version, event.timestamp)
        if after is None:
            return
        self.sandboxes[sandbox_id] = after
        for listener in self.listeners:
            listener(before, after)
        live_before = before is not None and before.state != "destroyed"
        live_after = after.state != "destroyed"
        if live_after and not live_before:
            self.placed[after.runner_id] += 1
        elif live_before and not live_after:
            self.placed[after.runner_id] -= 1

    def _apply_snapshot(self, snapshot_id: str, event: Recorded) -> None:
        before = self.snapshots.get(snapshot_id)
        after = snapshot_domain.evolve(before, event.payload, event.originator_version, event.timestamp)
        if after is None:
            return
        if after.state == "removed":
            self.snapshots.pop(snapshot_id, None)
            if after.build_hash:
                self.builds.pop((after.organization_id, after.build_hash), None)
            return
        self.snapshots[snapshot_id] = after
        if after.build_hash:
            self.builds[(after.organization_id, after.build_hash)] = snapshot_id

    def users_of_snapshot(self, snapshot_id: str) -> int:
        """Sandboxes that start (or will start) from a snapshot; one being destroyed no longer counts (removing the
        snapshot's tag does not disturb a container that is going away)."""
        return sum(1 for s in self.sandboxes.values()
                   if s.snapshot_id == snapshot_id and s.state not in ("destroying", "destroyed"))

    def users_of_volume(self, volume_id: str) -> int:
        """Live sandboxes that mount a volume (a stopped or archived one still needs it)."""
        return sum(1 for s in self.sandboxes.values() if s.state != "destroyed"
                   and any(m.volume_id == volume_id for m in s.volumes))

    async def catch_up(self) -> int:
        """Fold everything recorded so far; returns the position reached."""
        async with self._lock:
            while True:
                page = await asyncio.to_thread(self._log.notifications, self.position, 1000)
                if not page:
                    break
                for notification in page:
                    self.apply(self._log.decode(notification))
                self.position = page[-1].id
                self.folded += len(page)
        async with self._changed:
            self._changed.notify_all()
        return self.position

    def notify(self) -> None:
        self._tail.notify()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> bool:
        """Wait until `predicate()` holds after some fold, or the timeout passes (returns False)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
                return True
            except TimeoutError:
                return False

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.catch_up()
        self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()

    async def _follow_step(self) -> bool:
        await self.catch_up()
        return False
