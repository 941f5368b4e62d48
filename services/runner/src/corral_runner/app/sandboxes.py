"""The runner's use cases: carry out a command through the engine, then report what was observed."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from corral_agent.client import AgentUnavailable
from corral_contracts import guard as gd
from corral_contracts import runner as rc
from corral_contracts.runner import archive_image, backup_image
from corral_contracts.snapshot import runner_image
from corral_contracts.volume import docker_volume

from ..adapters import run_dirs
from ..adapters.agent_link import AgentLink
from ..domain.isolation import container_name, container_spec
from ..domain.network_policy import NetworkPolicy, policy
from ..domain.reconcile import Step, plan
from .network import NetworkGuard
from .ports import ContainerEngine, EngineError, FactSink, FirewallError

log = logging.getLogger(__name__)


class AgentNotReady(Exception):
    pass


class SandboxRunner:
    def __init__(self, *, runner_id: str, engine: ContainerEngine, agent: AgentLink, report: FactSink,
                 agent_dir: Path, network: NetworkGuard, agent_ready_timeout: float = 30.0,
                 extra_labels: dict[str, str] | None = None, run_dir_bytes: int = 64 * 1024**2,
                 snapshots: Any = None, helper_image: str = "corral/sandbox:default"):
        self.runner_id = runner_id
        self._run_dir_bytes = run_dir_bytes
        self.network = network
        self._engine = engine
        self._agent = agent
        self._report = report
        self._agent_dir = agent_dir
        self._ready_timeout = agent_ready_timeout
        self._labels = extra_labels or {}
        self._snapshots = snapshots
        """Fetches snapshot images this runner lacks (`SnapshotSource`)."""
        self._helper_image = helper_image

    async def _fact(self, cause: str, fact: Any) -> None:
        await self._report(fact, msg_id=f"{self.runner_id}:{cause}:{type(fact).__name__}")

    async def _failed(self, cause: str, sandbox_id: str, operation: str, reason: str,
                      recoverable: bool = False) -> None:
        log.warning("%s of %s failed: %s", operation, sandbox_id, reason)
        await self._fact(cause, rc.SandboxContainerFailed(runner_id=self.runner_id, sandbox_id=sandbox_id,
                                                          operation=operation, reason=reason,
                                                          recoverable=recoverable))

    async def _wait_agent(self, sandbox_id: str) -> None:
        deadline = time.monotonic() + self._ready_timeout
        name = container_name(sandbox_id)
        while True:
            try:
                await self._agent.ping(sandbox_id, timeout=1.0)
                return
            except AgentUnavailable:
                pass
            state = await self._engine.state(name)
            if state is None or state.get("Status") in ("exited", "dead"):
                tail = await self._engine.logs_tail(name)
                raise AgentNotReady(f"container exited before its agent answered: {tail.strip()[-500:]}")
            if time.monotonic() > deadline:
                raise AgentNotReady(f"agent did not answer within {self._ready_timeout:.0f}s")
            await asyncio.sleep(0.01)

    async def _boot(self, cause: str, sandbox_id: str, operation: str, network: NetworkPolicy) -> None:
        """Start the container (if it is not running) under its network policy, then wait for its agent.
        The policy is in force before the start is reported, so before any caller's code can run."""
        name = container_name(sandbox_id)
        try:
            state = await self._engine.state(name) or {}
            if state.get("Running"):
                await self.network.change(sandbox_id, network, running=True)
            else:  # after a host reboot the run directory's tmpfs is gone: bound it again before the start
                await asyncio.to_thread(run_dirs.ensure_bounded, self._agent.run_dir(sandbox_id), self._run_dir_bytes)
                await self.network.prepare(sandbox_id, network)
                await self._engine.start(name)
                await self.network.enforce(sandbox_id, network)
            await self._wait_agent(sandbox_id)
        except FirewallError as error:
            await self._engine.stop(name, force=True)  # never left running without its rules
            await self.network.forget_rules(sandbox_id)
            await self._failed(cause, sandbox_id, operation, f"network policy not applied: {error}", recoverable=True)
            return
        except (EngineError, AgentNotReady) as error:
            await self._failed(cause, sandbox_id, operation, str(error))
            return
        state = await self._engine.state(container_name(sandbox_id)) or {}
        await self._fact(cause, rc.SandboxContainerStarted(runner_id=self.runner_id, sandbox_id=sandbox_id,
                                                           container_id=str(state.get("Pid", ""))))

    async def create(self, command: rc.CreateSandbox, cause: str) -> None:
        run_dir = self._agent.run_dir(command.sandbox_id)
        await asyncio.to_thread(run_dirs.ensure_bounded, run_dir, self._run_dir_bytes)
        try:
            await self._engine.ensure_network()
            if command.snapshot_ref and not await self._engine.image_present(command.image):
                if self._snapshots is None:
                    raise EngineError(f"this runner lacks snapshot {command.snapshot_ref} and has no way to get it")
                await self._fact(cause, rc.SandboxSnapshotFetching(runner_id=self.runner_id,
                                                                   sandbox_id=command.sandbox_id))
                how = await self._snapshots.fetch(command.snapshot_ref, command.image)
                log.info("snapshot %s now on runner %s (%s)", command.snapshot_ref, self.runner_id, how)
            volumes = [(await self._engine.volume_mount(docker_volume(m.volume_id), m.subpath, self._helper_image,
                                                        self._labels), m.mount_path) for m in command.volumes]
            spec = container_spec(command, runner_id=self.runner_id, agent_dir=str(self._agent_dir),
                                  run_dir=str(run_dir), extra_labels=self._labels, volumes=volumes)
            await self._engine.create(spec)
        except EngineError as error:
            await self._failed(cause, command.sandbox_id, "create", str(error))
            return
        await self._boot(cause, command.sandbox_id, "create",
                         policy(command.network_block_all, command.network_allow_list))

    async def start(self, command: rc.StartSandbox, cause: str) -> None:
        if await self._engine.state(container_name(command.sandbox_id)) is None:
            await self._failed(cause, command.sandbox_id, "start", "the sandbox's container no longer exists")
            return
        await self._boot(cause, command.sandbox_id, "start",
                         policy(command.network_block_all, command.network_allow_list))

    async def stop(self, command: rc.StopSandbox, cause: str) -> None:
        code = await self._engine.stop(container_name(command.sandbox_id), force=command.force)
        await self.network.forget_rules(command.sandbox_id)
        await self._fact(cause, rc.SandboxContainerStopped(runner_id=self.runner_id, sandbox_id=command.sandbox_id,
                                                           exit_code=code))

    async def destroy(self, command: rc.DestroySandbox, cause: str, container: str = "") -> None:
        await self._engine.remove(container or container_name(command.sandbox_id))
        await self.network.forget(command.sandbox_id)
        await self._engine.remove_image(archive_image(command.sandbox_id))
        await self._engine.remove_image(backup_image(command.sandbox_id))
        await asyncio.to_thread(run_dirs.release, self._agent.run_dir(command.sandbox_id))
        await self._fact(cause, rc.SandboxContainerRemoved(runner_id=self.runner_id, sandbox_id=command.sandbox_id))

    async def archive(self, command: rc.ArchiveSandbox, cause: str) -> None:
        """Keep the filesystem as an image outside any container, then free the container."""
        name = container_name(command.sandbox_id)
        state = await self._engine.state(name)
        if state is None:
            await self._failed(cause, command.sandbox_id, "archive", "the sandbox's container no longer exists")
            return
        if state.get("Running"):
            await self._engine.stop(name, force=False)
        try:
            await self._engine.commit(name, command.image, {"corral.archive_of": command.sandbox_id})
        except EngineError as error:
            await self._failed(cause, command.sandbox_id, "archive", str(error), recoverable=True)
            return
        await self._engine.remove(name)
        await self.network.forget(command.sandbox_id)
        await asyncio.to_thread(run_dirs.release, self._agent.run_dir(command.sandbox_id))
        await self._fact(cause, rc.SandboxContainerArchived(runner_id=self.runner_id, sandbox_id=command.sandbox_id,
                                                            image=command.image))

    async def backup(self, command: rc.BackupSandbox, cause: str) -> None:
        """A copy of the running filesystem, without pausing it, replacing the previous backup."""
        name = container_name(command.sandbox_id)
        state = await self._engine.state(name)
        if state is None or not state.get("Running"):
            return  # stopped or gone meanwhile: nothing to back up, nothing to report
        try:
            await self._engine.commit(name, command.image, {"corral.backup_of": command.sandbox_id})
        except EngineError as error:
            log.warning("backup of %s failed: %s", command.sandbox_id, error)
            return
        await self._fact(cause, rc.SandboxContainerBackedUp(runner_id=self.runner_id, sandbox_id=command.sandbox_id,
                                                            image=command.image))

    async def capture(self, command: rc.CaptureSnapshot, cause: str) -> None:
        """The sandbox's filesystem as a snapshot image, handed to the snapshot manager so that any runner
        can start from it; this runner keeps its own tag of it."""
        name = container_name(command.sandbox_id)
        fact: Any
        try:
            if await self._engine.state(name) is None:
                raise EngineError("the sandbox's container no longer exists")
            await self._engine.commit(name, command.image, {"corral.snapshot": command.snapshot_id,
                                                            "corral.snapshot_of": command.sandbox_id})
            if self._snapshots is not None:
                await self._snapshots.hand_over(command.image)
            await self._engine.tag(command.image, runner_image(self.runner_id, command.image))
            size = await self._engine.image_size(command.image)
            fact = rc.SandboxSnapshotCaptured(runner_id=self.runner_id, sandbox_id=command.sandbox_id,
                                              snapshot_id=command.snapshot_id, image=command.image, size=size)
        except EngineError as error:
            fact = rc.SandboxSnapshotCaptureFailed(runner_id=self.runner_id, sandbox_id=command.sandbox_id,
                                                   snapshot_id=command.snapshot_id, reason=str(error))
        await self._fact(cause, fact)

    async def resize(self, command: rc.ResizeSandbox, cause: str) -> None:
        try:
            await self._engine.update(container_name(command.sandbox_id), nano_cpus=command.cpu * 1_000_000_000,
                                      mem_bytes=command.memory * 1024**3)
        except EngineError as error:
            await self._failed(cause, command.sandbox_id, "resize", str(error), recoverable=True)
            return
        await self._fact(cause, rc.SandboxContainerResized(runner_id=self.runner_id, sandbox_id=command.sandbox_id,
                                                           cpu=command.cpu, memory=command.memory))

    async def update_network(self, command: gd.UpdateSandboxNetwork, cause: str) -> None:
        """A new policy, live: a running sandbox keeps running; a stopped one gets it at its next start."""
        sid = command.sandbox_id
        wanted = policy(command.network_block_all, command.network_allow_list)
        state = await self._engine.state(container_name(sid))
        try:
            if state is not None:
                await self.network.change(sid, wanted, running=bool(state.get("Running")))
        except FirewallError as error:
            await self._engine.stop(container_name(sid), force=True)
            await self.network.forget_rules(sid)
            await self._failed(cause, sid, "network", f"network policy not applied: {error}", recoverable=True)
            return
        await self._fact(cause, gd.SandboxContainerNetworkApplied(runner_id=self.runner_id, sandbox_id=sid,
                                                                  revision=command.revision))

    async def handle(self, command: rc.RunnerCommand, cause: str) -> None:
        match command:
            case rc.CreateSandbox():
                await self.create(command, cause)
            case rc.StartSandbox():
                await self.start(command, cause)
            case rc.StopSandbox():
                await self.stop(command, cause)
            case rc.DestroySandbox():
                await self.destroy(command, cause)
            case rc.ArchiveSandbox():
                await self.archive(command, cause)
            case rc.ResizeSandbox():
                await self.resize(command, cause)
            case rc.BackupSandbox():
                await self.backup(command, cause)
            case gd.UpdateSandboxNetwork():
                await self.update_network(command, cause)
            case rc.CaptureSnapshot():
                await self.capture(command, cause)

    async def reconcile(self, assignments: rc.RunnerAssignments, boot_id: str) -> list[Step]:
        """Make the containers on this host agree with the log (run once at start-up)."""
        containers = await self._engine.list_managed(self.runner_id)
        steps = plan(assignments.sandboxes, containers)
        for step in steps:
            cause = f"reconcile-{boot_id}-{step.sandbox_id}"
            sid = step.sandbox_id
            match step.action:
                case "remove" | "report_removed":
                    await self.destroy(rc.DestroySandbox(sandbox_id=sid), cause, step.container)
                case "create":
                    assert step.assignment is not None
                    await self.create(step.assignment.command, cause)
                case "start" | "report_started":
                    assert step.assignment is not None
                    created = step.assignment.command
                    await self._boot(cause, sid, "start", policy(created.network_block_all, created.network_allow_list))
                case "stop" | "report_stopped":
                    await self.stop(rc.StopSandbox(sandbox_id=sid), cause)
                case "report_lost":
                    await self._failed(cause, sid, "reconcile", "the sandbox's container was lost on this runner")
        running = {c.sandbox_id for c in await self._engine.list_managed(self.runner_id) if c.running}
        await self.network.sweep(running)
        return steps
