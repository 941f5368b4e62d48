"""The runner context: commands a runner consumes, facts it reports, its heartbeat.

Commands are derived from recorded sandbox events by the api's process manager and published on
`cmd.runner.<runner_id>.<name>`. Facts are what the runner observed, published on `evt.runner.*`;
the api records them into the Sandbox aggregate.
"""

from __future__ import annotations

from typing import ClassVar, Union

import msgspec

from .guard import SandboxContainerNetworkApplied, SandboxContainerOomKilled, UpdateSandboxNetwork
from .volume import VolumeMount


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    sandbox_id: str


class CreateSandbox(_Command):
    image: str
    user: str
    env: dict[str, str] = {}
    cpu: int = 1
    memory: int = 1
    """GiB."""
    disk: int = 3
    """GiB."""
    network_block_all: bool = False
    network_allow_list: list[str] = []
    """Normalized IPv4 CIDRs egress is limited to; empty = no allow list."""
    snapshot_ref: str = ""
    """When set, `image` is this snapshot image as the runner holds it (`runner_image`): the runner fetches
    it first if it lacks it (from the registry when one is configured, else from the snapshot manager)."""
    volumes: list[VolumeMount] = []


class StartSandbox(_Command):
    network_block_all: bool = False
    network_allow_list: list[str] = []
    """The sandbox's network policy, enforced before the start is reported."""


class StopSandbox(_Command):
    force: bool = False


class DestroySandbox(_Command):
    pass


class ArchiveSandbox(_Command):
    """Keep the stopped container's filesystem as the image `image`, then remove the container."""

    image: str


def archive_image(sandbox_id: str) -> str:
    """The image an archived sandbox's filesystem is kept as: named once, for the api and the runners."""
    return f"corral-archive:{sandbox_id}"


def backup_image(sandbox_id: str) -> str:
    """The image a running sandbox is backed up to, now and then, so a lost container can be restored."""
    return f"corral-backup:{sandbox_id}"


class BackupSandbox(_Command):
    """Commit the running container's filesystem as `image`, without pausing it."""

    image: str


class ResizeSandbox(_Command):
    cpu: int
    memory: int
    """GiB."""


class CaptureSnapshot(_Command):
    """Keep the sandbox's filesystem as the snapshot image `image` (without pausing it) and hand it to
    the snapshot manager, so any runner can start sandboxes from it."""

    snapshot_id: str
    image: str


RunnerCommand = Union[
    CreateSandbox, StartSandbox, StopSandbox, DestroySandbox, ArchiveSandbox, ResizeSandbox, BackupSandbox,
    UpdateSandboxNetwork,
    CaptureSnapshot,
]


class _Fact(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "runner"
    runner_id: str
    sandbox_id: str


class SandboxContainerStarted(_Fact):
    container_id: str


class SandboxContainerStopped(_Fact):
    exit_code: int | None = None


class SandboxContainerRemoved(_Fact):
    pass


class SandboxContainerArchived(_Fact):
    image: str


class SandboxContainerBackedUp(_Fact):
    image: str


class SandboxContainerResized(_Fact):
    cpu: int
    memory: int


class SandboxContainerFailed(_Fact):
    operation: str
    reason: str
    recoverable: bool = False


class SandboxSnapshotFetching(_Fact):
    """The runner lacks the sandbox's snapshot image and is fetching it before creating the container."""


class SandboxSnapshotCaptured(_Fact):
    snapshot_id: str
    image: str
    size: int = 0


class SandboxSnapshotCaptureFailed(_Fact):
    snapshot_id: str
    reason: str


RunnerFact = Union[
    SandboxContainerStarted, SandboxContainerStopped, SandboxContainerRemoved, SandboxContainerFailed,
    SandboxContainerArchived, SandboxContainerResized, SandboxContainerBackedUp,
    SandboxContainerNetworkApplied, SandboxContainerOomKilled, SandboxSnapshotCaptured, SandboxSnapshotCaptureFailed,
    SandboxSnapshotFetching,
]


class RunnerHeartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """Value of a runner's key in `RUNNERS_BUCKET`: registration and liveness in one."""

    runner_id: str
    toolbox_url: str
    """Base URL of the runner's toolbox front, e.g. `http://127.0.0.1:3003`."""
    started_at: str
    sandboxes: int = 0
    snapshots: list[str] = []
    """Snapshot images this runner holds (their refs): the scheduler prefers a runner that has one."""
    cpus: int = 0
    memory_gib: int = 0
    disk_limits: bool = False
    """Whether the engine enforces each sandbox's disk size (`storage_opt size`: btrfs, or overlay2 on XFS with project quotas)."""
    network_policy: bool = False
    """Whether the runner enforces the network policy on its host (firewall rules installed)."""


class SandboxAssignment(msgspec.Struct, frozen=True, kw_only=True):
    sandbox_id: str
    state: str
    """The api's current state of the sandbox (Daytona vocabulary)."""
    desired_state: str
    """`started`, `stopped` or `destroyed`."""
    command: CreateSandbox
    """How to (re)create its container, should it be missing while still being created."""


class AssignmentsRequest(msgspec.Struct, frozen=True, kw_only=True):
    runner_id: str


class RunnerAssignments(msgspec.Struct, frozen=True, kw_only=True):
    runner_id: str
    sandboxes: list[SandboxAssignment] = []
