"""Events of the Snapshot aggregate (templates sandboxes start from), recorded by the api and published
on `evt.snapshot.*`, and of its name index (`evt.snapshot_name.*`).

States (Daytona's): `pending → building | pulling → active`; `error` / `build_failed` with a reason;
`inactive` (deactivated), `removing`. `state_after(event)` gives the state an event leads to, so a
consumer (webhooks) can tell the old and the new state from the events alone.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec

SNAPSHOT_STATES = ("pending", "building", "pulling", "active", "inactive", "error", "build_failed", "removing")


class _SnapshotEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "snapshot"
    snapshot_id: str


class SnapshotCreated(_SnapshotEvent):
    """A snapshot was asked for; state `pending` (or `active` at once for a platform image)."""

    organization_id: str
    name: str
    ref: str
    """The image the snapshot is kept as (e.g. `corral-snapshot:<hash>`), what sandboxes start from."""
    source: str
    """`image` (an image on the host or in the registry), `dockerfile`, `sandbox` (a sandbox's filesystem)
    or `platform` (an image every runner host has, e.g. the default sandbox image: no build)."""
    image_name: str = ""
    """The source image (`image` and `platform` sources)."""
    dockerfile: str = ""
    context_hashes: list[str] = []
    build_hash: str = ""
    """sha256 of the Dockerfile and its context hashes: identical builds share one snapshot."""
    source_sandbox_id: str = ""
    general: bool = False
    entrypoint: list[str] = []
    cpu: int = 1
    gpu: int = 0
    memory: int = 1
    disk: int = 3
    hidden: bool = False
    """Made for one sandbox's `buildInfo`: not listed (Daytona hides these too)."""


class SnapshotBuildStarted(_SnapshotEvent):
    """The snapshot manager began to build (`building`) or to fetch the image (`pulling`)."""

    state: str = "building"


class SnapshotBuilt(_SnapshotEvent):
    """The image is ready: state `active`."""

    ref: str
    size: int = 0
    """Bytes."""
    python: str = ""
    """The image's python3 version (the agent needs ≥ 3.9)."""
    entrypoint: list[str] = []


class SnapshotBuildFailed(_SnapshotEvent):
    reason: str
    state: str = "build_failed"
    """`build_failed` (the build itself failed) or `error` (anything else)."""


class SnapshotDeactivated(_SnapshotEvent):
    pass


class SnapshotActivated(_SnapshotEvent):
    pass


class SnapshotRemoveRequested(_SnapshotEvent):
    pass


class SnapshotRemoved(_SnapshotEvent):
    pass


class SnapshotNameClaimed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "snapshot_name"
    organization_id: str
    name: str
    snapshot_id: str


class SnapshotNameReleased(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "snapshot_name"
    organization_id: str
    name: str
    snapshot_id: str


SnapshotEvent = Union[
    SnapshotCreated, SnapshotBuildStarted, SnapshotBuilt, SnapshotBuildFailed, SnapshotDeactivated,
    SnapshotActivated, SnapshotRemoveRequested, SnapshotRemoved, SnapshotNameClaimed, SnapshotNameReleased,
]


def state_after(event: Any) -> str | None:
    """The snapshot state an event leads to (None: the event changes no state). `removed` = gone."""
    match event:
        case SnapshotCreated(source=source):
            return "active" if source == "platform" else "pending"
        case SnapshotBuildStarted(state=state):
            return state
        case SnapshotBuilt() | SnapshotActivated():
            return "active"
        case SnapshotBuildFailed(state=state):
            return state
        case SnapshotDeactivated():
            return "inactive"
        case SnapshotRemoveRequested():
            return "removing"
        case SnapshotRemoved():
            return "removed"
    return None


def snapshot_image(key: str) -> str:
    """The image a snapshot is kept as, named once for the api, the snapshot manager and the runners."""
    return f"corral-snapshot:{key[:40]}"


def runner_image(runner_id: str, ref: str) -> str:
    """A runner's own tag of a snapshot image: present exactly when that runner holds the snapshot."""
    repository, _, tag = ref.rpartition(":")
    return f"corral-runner-{runner_id.lower()}/{repository.replace(':', '-')}:{tag}"
