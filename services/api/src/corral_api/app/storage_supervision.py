"""The supervisor's sweep over snapshots and volumes: nothing stays pending or building forever.

- a snapshot `pending` for a while has its build command sent again (builds are idempotent: an image that
  exists is reported ready at once); one building past the build deadline ends in `error`;
- a volume still `pending_create`/`pending_delete` has its storage command sent again;
- sandboxes waiting for a build catch up with their snapshot (should a notification have been lost).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from ..domain import snapshot as snapshot_domain
from .directory import SandboxDirectory
from .process_manager import build_command, volume_command_for_state
from .snapshots import SnapshotService

log = logging.getLogger(__name__)

Send = Callable[[Any, str], Awaitable[None]]
SYSTEM = {"Corral-Actor": "supervisor"}


class StorageSupervisor:
    def __init__(self, *, directory: SandboxDirectory, snapshots: SnapshotService, send: Send,
                 advance_waiting: Callable[[], Awaitable[None]], reissue_after: float, build_deadline: float):
        self._directory = directory
        self._snapshots = snapshots
        self._send = send
        self._advance_waiting = advance_waiting
        self._reissue_after = timedelta(seconds=reissue_after)
        self._build_deadline = build_deadline
        self._attempts: dict[tuple[str, int], int] = {}

    def _due(self, key: tuple[str, int], since: datetime, now: datetime, factor: int) -> int | None:
        attempt = self._attempts.get(key, 0) + 1
        if now < since + self._reissue_after * factor * attempt:
            return None
        self._attempts[key] = attempt
        return attempt

    async def sweep(self, now: datetime) -> int:
        actions = 0
        for snapshot in list(self._directory.snapshots.values()):
            if snapshot_domain.overdue(snapshot, now, self._build_deadline):
                log.warning("snapshot %s: build overdue", snapshot.id)
                await self._snapshots.apply(snapshot.id, lambda s: snapshot_domain.overdue(
                    s, now, self._build_deadline), SYSTEM)
                actions += 1
            elif snapshot.state == "pending" and snapshot.source in ("image", "dockerfile"):
                attempt = self._due((snapshot.id, snapshot.version), snapshot.updated_at, now, 3)
                if attempt:
                    await self._send(build_command(snapshot), f"reissue:{snapshot.id}:{snapshot.version}:{attempt}")
                    actions += 1
        for volume in list(self._directory.volumes.values()):
            command = volume_command_for_state(volume)
            if command is not None:
                attempt = self._due((volume.id, volume.version), volume.updated_at, now, 1)
                if attempt:
                    await self._send(command, f"reissue:{volume.id}:{volume.version}:{attempt}")
                    actions += 1
        await self._advance_waiting()
        return actions
