"""The process manager: recorded sandbox events become runner commands.

Commands are derived from events already in the log (never published beside a save). The command id
is derived from the event id, so a redelivered event republishes an identical command that JetStream
drops as a duplicate.
"""

from __future__ import annotations

from typing import Any

import msgspec

from corral_contracts import guard as gd
from corral_contracts import runner as cmd
from corral_contracts import sandbox as ev
from corral_contracts import snapshot as snev
from corral_contracts import snapshot_manager as smc
from corral_contracts import volume as vev
from corral_contracts.runner import archive_image
from corral_contracts.snapshot_manager import SnapshotManagerCommand

from ..domain.sandbox import Sandbox
from ..domain.snapshot import Snapshot
from ..domain.volume import Volume


def create_command(sandbox: Sandbox) -> cmd.CreateSandbox:
    return cmd.CreateSandbox(sandbox_id=sandbox.id, image=sandbox.image, user=sandbox.user, env=sandbox.env,
                             cpu=sandbox.cpu, memory=sandbox.memory, disk=sandbox.disk,
                             network_block_all=sandbox.network_block_all,
                             network_allow_list=sandbox.network_allow_list, snapshot_ref=sandbox.snapshot_ref,
                             volumes=sandbox.volumes)


def start_command(sandbox: Sandbox) -> cmd.StartSandbox:
    return cmd.StartSandbox(sandbox_id=sandbox.id, network_block_all=sandbox.network_block_all,
                            network_allow_list=sandbox.network_allow_list)


def network_command(sandbox: Sandbox) -> gd.UpdateSandboxNetwork:
    return gd.UpdateSandboxNetwork(sandbox_id=sandbox.id, revision=sandbox.network_revision,
                                   network_block_all=sandbox.network_block_all,
                                   network_allow_list=sandbox.network_allow_list)


def command_for(event: Any, sandbox: Sandbox) -> cmd.RunnerCommand | None:
    """The command that carries out `event` for `sandbox` (its state as of that event), if any."""
    match event:
        case ev.SandboxCreated(pending_build=pending):
            return None if pending else create_command(sandbox)
        case ev.SandboxSnapshotReady():
            return create_command(sandbox)
        case ev.SandboxStartRequested():
            return start_command(sandbox)
        case ev.SandboxStopRequested(force=force):
            return cmd.StopSandbox(sandbox_id=sandbox.id, force=force)
        case ev.SandboxDestroyRequested():
            return cmd.DestroySandbox(sandbox_id=sandbox.id)
        case ev.SandboxArchiveRequested():
            return cmd.ArchiveSandbox(sandbox_id=sandbox.id, image=archive_image(sandbox.id))
        case ev.SandboxRestoreRequested(image=image):
            return msgspec.structs.replace(create_command(sandbox), image=image)
        case ev.SandboxResizeRequested(cpu=cpu, memory=memory):
            return cmd.ResizeSandbox(sandbox_id=sandbox.id, cpu=cpu, memory=memory)
        case ev.SandboxRecoverRequested():
            return start_command(sandbox)
        case gd.SandboxNetworkSettingsChanged():
            return network_command(sandbox)
    return None


def command_for_state(sandbox: Sandbox) -> cmd.RunnerCommand | None:
    """The command that moves a sandbox out of its transitional state: what the supervisor re-issues
    (every runner command is idempotent) when a runner seems to have lost one."""
    match sandbox.state:
        case "creating" | "pulling_snapshot":
            return create_command(sandbox)
        case "restoring" if sandbox.archive_image:
            return msgspec.structs.replace(create_command(sandbox), image=sandbox.archive_image)
        case "starting":
            return start_command(sandbox)
        case "stopped" if sandbox.desired_state == "started":
            return start_command(sandbox)
        case "stopping":
            return cmd.StopSandbox(sandbox_id=sandbox.id)
        case "destroying":
            return cmd.DestroySandbox(sandbox_id=sandbox.id)
        case "archiving":
            return cmd.ArchiveSandbox(sandbox_id=sandbox.id, image=archive_image(sandbox.id))
    return None


def assignment(sandbox: Sandbox) -> cmd.SandboxAssignment:
    return cmd.SandboxAssignment(sandbox_id=sandbox.id, state=sandbox.state, desired_state=sandbox.desired_state,
                                 command=create_command(sandbox))


def snapshot_command(event: Any, snapshot: Snapshot) -> SnapshotManagerCommand | None:
    """The snapshot manager's work for a recorded snapshot or volume event (a snapshot of a sandbox is the
    runner's: see `capture_command`)."""
    match event:
        case snev.SnapshotCreated(source="image" | "dockerfile"):
            return build_command(snapshot)
        case snev.SnapshotBuildStarted(state="pending"):
            return build_command(snapshot)
        case snev.SnapshotRemoveRequested():
            return smc.RemoveSnapshotImage(snapshot_id=snapshot.id, ref=snapshot.ref)
    return None


def build_command(snapshot: Snapshot) -> smc.BuildSnapshot:
    return smc.BuildSnapshot(snapshot_id=snapshot.id, ref=snapshot.ref, source=snapshot.source,
                             image_name=snapshot.image_name, dockerfile=snapshot.dockerfile,
                             context_hashes=snapshot.context_hashes, attempt=snapshot.attempt)


def capture_command(snapshot: Snapshot) -> cmd.CaptureSnapshot:
    return cmd.CaptureSnapshot(sandbox_id=snapshot.source_sandbox_id, snapshot_id=snapshot.id, image=snapshot.ref)


def volume_command(event: Any) -> SnapshotManagerCommand | None:
    match event:
        case vev.VolumeCreated(volume_id=volume_id):
            return smc.CreateVolumeStorage(volume_id=volume_id)
        case vev.VolumeDeleteRequested(volume_id=volume_id):
            return smc.DeleteVolumeStorage(volume_id=volume_id)
    return None


def volume_command_for_state(volume: Volume) -> SnapshotManagerCommand | None:
    """What the supervisor re-sends for a volume stuck in a pending state."""
    if volume.state in ("pending_create", "creating"):
        return smc.CreateVolumeStorage(volume_id=volume.id)
    if volume.state in ("pending_delete", "deleting"):
        return smc.DeleteVolumeStorage(volume_id=volume.id)
    return None
