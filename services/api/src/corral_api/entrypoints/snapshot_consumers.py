"""The api's consumers for snapshots and volumes: recorded events become the snapshot manager's (or a
runner's) commands, and sandboxes waiting for a build follow it; the snapshot manager's facts are recorded."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import msgspec

from corral_contracts import codecs
from corral_contracts import snapshot as snev
from corral_contracts.envelope import CommandEnvelope
from corral_contracts.snapshot_manager import RemoveSnapshotImage
from corral_contracts.subjects import runner_command_subject, snapshot_manager_command_subject
from corral_eventstore import EventLog, utcnow
from corral_messaging import Bus, Delivery, PoisonMessage

from ..app.directory import SandboxDirectory
from ..app.process_manager import capture_command, snapshot_command, volume_command
from ..app.sandboxes import SandboxService
from ..app.snapshots import SnapshotService
from ..app.snapshots import fold as snapshot_fold
from ..app.volumes import VolumeService
from ..domain.sandbox import WAITING_FOR_BUILD

log = logging.getLogger(__name__)

SYSTEM = {"Corral-Actor": "snapshot-builds"}


async def send(bus: Bus, subject: str, command: Any, command_id: str) -> None:
    message = CommandEnvelope(command_id=command_id, issued_at=utcnow(), payload=command)
    await bus.publish(subject, codecs.encode(message), msg_id=command_id)


class SnapshotProcessManager:
    """`evt.snapshot.*` -> the snapshot manager's builds and removals, a runner's capture of a sandbox; and
    every sandbox waiting for that snapshot moves along (`building_snapshot`, `creating`, `build_failed`)."""

    def __init__(self, bus: Bus, event_log: EventLog, directory: SandboxDirectory, sandboxes: SandboxService):
        self._bus = bus
        self._log = event_log
        self._directory = directory
        self._sandboxes = sandboxes

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.snapshot_events.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable snapshot event: {error}") from error
        if isinstance(envelope.payload, (snev.SnapshotNameClaimed, snev.SnapshotNameReleased)):
            return
        history = await asyncio.to_thread(self._log.history, uuid.UUID(envelope.aggregate_id))
        state = None
        for recorded in history:
            if recorded.originator_version > envelope.aggregate_version:
                break
            state = snapshot_fold(state, recorded)
        if state is None:
            return
        command = snapshot_command(envelope.payload, state)
        if isinstance(command, RemoveSnapshotImage):
            await self._directory.catch_up()
            shared = any(s.ref == command.ref and s.id != command.snapshot_id for s in self._directory.snapshots.values())
            command = msgspec.structs.replace(command, keep_image=shared)
        if command is not None:
            await send(self._bus, snapshot_manager_command_subject(command), command,
                       f"{envelope.event_id}:{type(command).__name__}")
        if isinstance(envelope.payload, snev.SnapshotCreated) and envelope.payload.source == "sandbox":
            sandbox = await self._sandboxes.load(envelope.payload.source_sandbox_id)
            if sandbox is not None:
                capture = capture_command(state)
                await send(self._bus, runner_command_subject(sandbox.runner_id, capture), capture,
                           f"{envelope.event_id}:CaptureSnapshot")
        await self.advance_waiting(state.id)

    async def advance_waiting(self, snapshot_id: str | None = None) -> None:
        """Sandboxes waiting for a build follow it (all of them when `snapshot_id` is None: the sweep)."""
        await self._directory.catch_up()
        waiting = [s for s in self._directory.sandboxes.values()
                   if (s.state in WAITING_FOR_BUILD and (snapshot_id is None or s.snapshot_id == snapshot_id))
                   or (s.state == "snapshotting" and (snapshot_id is None or s.capturing == snapshot_id))]
        for sandbox in waiting:
            await self._sandboxes.follow_build(sandbox, SYSTEM)


class VolumeProcessManager:
    """`evt.volume.*` -> the snapshot manager creates and removes the volume's storage."""

    def __init__(self, bus: Bus):
        self._bus = bus

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.volume_events.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable volume event: {error}") from error
        command = volume_command(envelope.payload)
        if command is not None:
            await send(self._bus, snapshot_manager_command_subject(command), command,
                       f"{envelope.event_id}:{type(command).__name__}")


class SnapshotManagerFacts:
    """`evt.snapshot_manager.*` -> events of the Snapshot and Volume aggregates, acked once recorded."""

    def __init__(self, snapshots: SnapshotService, volumes: VolumeService):
        self._snapshots = snapshots
        self._volumes = volumes

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.snapshot_manager_facts.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable snapshot manager fact: {error}") from error
        meta = {k: v for k, v in delivery.headers.items() if k in ("traceparent", "tracestate")}
        meta["Corral-Actor"] = "snapshot-manager"
        meta["Corral-Causation-Id"] = envelope.event_id
        fact = envelope.payload
        if hasattr(fact, "snapshot_id"):
            await self._snapshots.observe(fact, meta)
        else:
            await self._volumes.observe(fact, meta)
