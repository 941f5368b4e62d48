"""The api's message consumers: the process manager, the runner-facts recorder, assignment replies."""

from __future__ import annotations

import asyncio
import logging
import uuid

from corral_contracts import codecs
from corral_contracts.envelope import CommandEnvelope
from typing import Any

from corral_contracts.runner import (BackupSandbox, RunnerAssignments, RunnerCommand, SandboxSnapshotCaptured,
                                     SandboxSnapshotCaptureFailed, backup_image)
from corral_contracts.subjects import runner_command_subject
from corral_eventstore import EventLog, utcnow
from corral_messaging import Bus, Delivery, PoisonMessage

from ..app.directory import SandboxDirectory
from ..app.process_manager import assignment, command_for, command_for_state
from ..app.sandboxes import SandboxService, fold
from ..domain.sandbox import Sandbox, finish_snapshot

log = logging.getLogger(__name__)


class ProcessManager:
    """`evt.sandbox.*` -> `cmd.runner.<runner>.*`, acked once the command is on `CMD`."""

    def __init__(self, bus: Bus, event_log: EventLog):
        self._bus = bus
        self._log = event_log

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.sandbox_events.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable sandbox event: {error}") from error
        history = await asyncio.to_thread(self._log.history, uuid.UUID(envelope.aggregate_id))
        state = None
        for recorded in history:
            if recorded.originator_version > envelope.aggregate_version:
                break
            state = fold(state, recorded)
        if state is None:
            return
        command = command_for(envelope.payload, state)
        if command is None:
            return
        await self._send(state.runner_id, command, f"{envelope.event_id}:{type(command).__name__}")

    async def reissue(self, sandbox: Sandbox, attempt: int) -> bool:
        """Send again the command that moves a sandbox out of its transitional state."""
        command = command_for_state(sandbox)
        if command is None:
            return False
        await self._send(sandbox.runner_id, command, f"reissue:{sandbox.id}:{sandbox.version}:{attempt}")
        return True

    async def backup(self, sandbox: Sandbox) -> None:
        """Ask the sandbox's runner for a backup (periodic; not a change of desired state)."""
        command = BackupSandbox(sandbox_id=sandbox.id, image=backup_image(sandbox.id))
        await self._send(sandbox.runner_id, command, f"backup:{sandbox.id}:{utcnow().isoformat()}")

    async def _send(self, runner_id: str, command: RunnerCommand, command_id: str) -> None:
        message = CommandEnvelope(command_id=command_id, issued_at=utcnow(), payload=command)
        await self._bus.publish(runner_command_subject(runner_id, command), codecs.encode(message),
                                msg_id=command_id)


class FactRecorder:
    """`evt.runner.*` -> events of the Sandbox aggregate, acked after they are recorded."""

    def __init__(self, service: SandboxService, snapshots: Any = None):
        self._service = service
        self._snapshots = snapshots

    async def handle(self, delivery: Delivery) -> None:
        try:
            envelope = codecs.runner_facts.decode(delivery.data)
        except Exception as error:
            raise PoisonMessage(f"undecodable runner fact: {error}") from error
        meta = {k: v for k, v in delivery.headers.items() if k in ("traceparent", "tracestate")}
        meta["Corral-Actor"] = f"runner:{envelope.payload.runner_id}"
        meta["Corral-Causation-Id"] = envelope.event_id
        if isinstance(envelope.payload, (SandboxSnapshotCaptured, SandboxSnapshotCaptureFailed)):
            if self._snapshots is not None:
                await self._snapshots.observe(envelope.payload, meta)
            sandbox = await self._service.load(envelope.payload.sandbox_id)
            if sandbox is not None:
                ok = isinstance(envelope.payload, SandboxSnapshotCaptured)
                await self._service.apply(sandbox, lambda s: finish_snapshot(s, envelope.payload.snapshot_id, ok), meta)
            return
        await self._service.observe(envelope.payload, meta)


class AssignmentDesk:
    """Answers a (re)starting runner: which sandboxes are yours, and what state should they be in."""

    def __init__(self, directory: SandboxDirectory):
        self._directory = directory

    async def handle(self, data: bytes) -> bytes:
        request = codecs.assignments_request.decode(data)
        await self._directory.catch_up()
        sandboxes = [assignment(s) for s in self._directory.sandboxes.values()
                     if s.runner_id == request.runner_id and s.state != "destroyed"]
        return codecs.encode(RunnerAssignments(runner_id=request.runner_id, sandboxes=sandboxes))
