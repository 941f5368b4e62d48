"""Events of the Sandbox aggregate (recorded by the api, published on `evt.sandbox.*`).

Desired state is what was asked (`...Requested`); observed state is what a runner saw
(`SandboxStarted`, `SandboxStopped`, ...). The aggregate folds both into Daytona's state vocabulary.
"""

from __future__ import annotations

from typing import ClassVar, Union

import msgspec

from .guard import SandboxNetworkApplied, SandboxNetworkSettingsChanged, SandboxOomKilled
from .volume import VolumeMount


class BuildInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A sandbox made from a declarative image (`buildInfo`): the snapshot built (or reused) for it."""

    dockerfile: str
    context_hashes: list[str] = []
    snapshot_ref: str


class _SandboxEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "sandbox"
    sandbox_id: str


class SandboxCreated(_SandboxEvent):
    """A sandbox was asked for and placed on a runner; its desired state is `started`."""

    organization_id: str
    name: str
    runner_id: str
    image: str
    snapshot: str
    user: str
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    public: bool = False
    target: str = "local"
    cpu: int = 1
    gpu: int = 0
    memory: int = 1
    disk: int = 3
    auto_stop_interval: int = 15
    auto_archive_interval: int = 10080
    auto_delete_interval: int = -1
    network_block_all: bool = False
    network_allow_list: list[str] = []
    """Normalized IPv4 CIDRs egress is limited to; empty = no allow list."""
    preview_token: str = ""
    snapshot_id: str = ""
    snapshot_ref: str = ""
    """The snapshot image to fetch onto the runner ("" = `image` is on every runner host)."""
    volumes: list[VolumeMount] = []
    build: BuildInfo | None = None
    pending_build: bool = False
    """Its snapshot is still being built: the sandbox waits in `pending_build`."""


class SandboxBuildStarted(_SandboxEvent):
    """The snapshot the sandbox waits for is being built: `building_snapshot`."""


class SandboxSnapshotReady(_SandboxEvent):
    """The snapshot it waited for is active: the sandbox is created from `image` (`creating`)."""

    image: str
    snapshot_ref: str = ""


class SandboxBuildFailed(_SandboxEvent):
    """The snapshot it waited for failed: `build_failed`."""

    reason: str


class SandboxPullingSnapshot(_SandboxEvent):
    """Its runner is fetching the snapshot image first: `pulling_snapshot`."""

    runner_id: str


class SandboxSnapshotStarted(_SandboxEvent):
    """The sandbox's filesystem is being kept as snapshot `snapshot_id`: `snapshotting` until it is done."""

    snapshot_id: str


class SandboxSnapshotFinished(_SandboxEvent):
    """The capture ended (`ok` or not): the sandbox is back in the state it was in."""

    snapshot_id: str
    ok: bool = True


class SandboxStarted(_SandboxEvent):
    """A runner reported the container running and its agent answering."""

    runner_id: str
    container_id: str = ""


class SandboxStartRequested(_SandboxEvent):
    reason: str = "user"
    """`user`, or what woke it (`preview-visit`)."""


class SandboxStopRequested(_SandboxEvent):
    force: bool = False
    reason: str = "user"
    """`user`, or the timer that asked (`auto-stop`)."""


class SandboxStopped(_SandboxEvent):
    runner_id: str
    exit_code: int | None = None


class SandboxDestroyRequested(_SandboxEvent):
    reason: str = "user"
    """`user`, or the timer that asked (`auto-delete`)."""


class SandboxDestroyed(_SandboxEvent):
    runner_id: str


class SandboxFailed(_SandboxEvent):
    """Something went wrong on the runner; the sandbox is in `error`."""

    reason: str
    recoverable: bool = False
    operation: str = ""


class SandboxLabelsReplaced(_SandboxEvent):
    labels: dict[str, str]


class SandboxTimersChanged(_SandboxEvent):
    """Lifecycle timers in minutes; None leaves a timer as it was."""

    auto_stop_interval: int | None = None
    auto_archive_interval: int | None = None
    auto_delete_interval: int | None = None


class SandboxArchiveRequested(_SandboxEvent):
    reason: str = "user"
    """`user`, or `auto-archive`."""


class SandboxArchived(_SandboxEvent):
    """The runner kept the filesystem as an image and freed the container."""

    runner_id: str
    image: str


class SandboxRestoreRequested(_SandboxEvent):
    """Start of an archived sandbox: a new container from its archived filesystem."""

    image: str
    reason: str = "user"
    """`user`, or what woke it (`preview-visit`)."""


class SandboxResizeRequested(_SandboxEvent):
    cpu: int
    memory: int


class SandboxResized(_SandboxEvent):
    runner_id: str
    cpu: int
    memory: int


class SandboxBackedUp(_SandboxEvent):
    """A backup of the running sandbox's filesystem completed."""

    runner_id: str
    image: str


class SandboxRecoverRequested(_SandboxEvent):
    """Leave `error`: drive the sandbox to `started` again."""


class SandboxSigningKeyRotated(_SandboxEvent):
    """The sandbox got a new key for signed file URLs (issued on first request, replaced on rotation);
    URLs signed with an earlier key stop working. The proxy verifies signatures with it."""

    signing_key: str


class SandboxPublicChanged(_SandboxEvent):
    """Previews of the sandbox need no credentials (`public`), or need them again."""

    public: bool


class SandboxNameClaimed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A sandbox took a name in its organization (the name-index aggregate)."""

    __aggregate__: ClassVar[str] = "sandbox_name"
    organization_id: str
    name: str
    sandbox_id: str


class SandboxNameReleased(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "sandbox_name"
    organization_id: str
    name: str
    sandbox_id: str


SandboxEvent = Union[
    SandboxCreated,
    SandboxStarted,
    SandboxStartRequested,
    SandboxStopRequested,
    SandboxStopped,
    SandboxDestroyRequested,
    SandboxDestroyed,
    SandboxFailed,
    SandboxLabelsReplaced,
    SandboxTimersChanged,
    SandboxArchiveRequested,
    SandboxArchived,
    SandboxRestoreRequested,
    SandboxResizeRequested,
    SandboxResized,
    SandboxRecoverRequested,
    SandboxSigningKeyRotated,
    SandboxBackedUp,
    SandboxNetworkSettingsChanged,
    SandboxNetworkApplied,
    SandboxOomKilled,
    SandboxBuildStarted,
    SandboxSnapshotReady,
    SandboxBuildFailed,
    SandboxPublicChanged,
    SandboxSnapshotStarted,
    SandboxSnapshotFinished,
    SandboxPullingSnapshot,
    SandboxNameClaimed,
    SandboxNameReleased,
]
