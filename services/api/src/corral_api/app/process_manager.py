"""The process manager: recorded sandbox events become runner commands.

Commands are derived from events already in the log (never published beside a save). The command id
is derived from the event id, so a redelivered event republishes an identical command that JetStream
drops as a duplicate.
"""

from __future__ import annotations

from typing import Any

from corral_contracts import runner as cmd
from corral_contracts import sandbox as ev

from ..domain.sandbox import Sandbox


def create_command(sandbox: Sandbox) -> cmd.CreateSandbox:
    return cmd.CreateSandbox(sandbox_id=sandbox.id, image=sandbox.image, user=sandbox.user, env=sandbox.env,
                             cpu=sandbox.cpu, memory=sandbox.memory, disk=sandbox.disk,
                             network_block_all=sandbox.network_block_all)


def command_for(event: Any, sandbox: Sandbox) -> cmd.RunnerCommand | None:
    """The command that carries out `event` for `sandbox` (its state as of that event), if any."""
    match event:
        case ev.SandboxCreated():
            return create_command(sandbox)
        case ev.SandboxStartRequested():
            return cmd.StartSandbox(sandbox_id=sandbox.id)
        case ev.SandboxStopRequested(force=force):
            return cmd.StopSandbox(sandbox_id=sandbox.id, force=force)
        case ev.SandboxDestroyRequested():
            return cmd.DestroySandbox(sandbox_id=sandbox.id)
    return None


def assignment(sandbox: Sandbox) -> cmd.SandboxAssignment:
    return cmd.SandboxAssignment(sandbox_id=sandbox.id, state=sandbox.state, desired_state=sandbox.desired_state,
                                 command=create_command(sandbox))
