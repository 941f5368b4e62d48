"""The Sandbox aggregate: state folded from its events, and pure decisions that return new events.

Desired state is what the user asked for; `state` is Daytona's observed state. A decision never
performs I/O: it looks at the current state and returns the events to record (possibly none, when the
request is already satisfied — every operation is idempotent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from corral_contracts import guard as gd
from corral_contracts import runner as facts
from corral_contracts import sandbox as ev
from corral_contracts.sandbox import BuildInfo
from corral_contracts.volume import VolumeMount

from . import guard
from .errors import InvalidRequest, InvalidState

TRANSITIONAL = frozenset({"creating", "starting", "stopping", "destroying", "archiving", "restoring", "resizing",
                          "pending_build", "building_snapshot", "snapshotting", "pulling_snapshot"})
WAITING_FOR_BUILD = frozenset({"pending_build", "building_snapshot"})

CONTAINER_LOST = "reconcile"
"""The operation a runner names when it finds a sandbox's container gone."""

ARCHIVE_MAX_MINUTES = 43_200
"""Auto-archive: 0 means this maximum (30 days); larger values are clamped to it."""


class Sandbox(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    organization_id: str
    name: str
    runner_id: str
    image: str
    snapshot: str
    user: str
    env: dict[str, str]
    labels: dict[str, str]
    public: bool
    target: str
    cpu: int
    gpu: int
    memory: int
    disk: int
    auto_stop_interval: int
    auto_archive_interval: int
    auto_delete_interval: int
    network_block_all: bool
    preview_token: str
    network_allow_list: list[str] = []
    state: str
    desired_state: str
    created_at: datetime
    updated_at: datetime
    error_reason: str | None = None
    recoverable: bool = False
    archive_image: str | None = None
    backup_image: str | None = None
    backup_at: datetime | None = None
    error_operation: str | None = None
    """What failed, for `recover`: a container lost on its runner is restored from the last backup."""
    resume_state: str | None = None
    """The state a resize returns to."""
    signing_key: str = ""
    """The key of signed file URLs ("" until first asked for)."""
    network_revision: int = 0
    """How many times the network policy changed after creation."""
    network_applied_revision: int = 0
    """The latest of those changes the runner confirmed enforcing."""
    oom_kills: int = 0
    """Processes the kernel killed in this sandbox for exceeding its memory limit, over its whole life."""
    last_oom_at: datetime | None = None
    oom_run: str = ""
    oom_run_kills: int = 0
    """The container run of the last recorded OOM kill and that run's count (for idempotent recording)."""
    snapshot_id: str = ""
    snapshot_ref: str = ""
    volumes: list[VolumeMount] = []
    build: BuildInfo | None = None
    capturing: str = ""
    """The snapshot being made of this sandbox while it is `snapshotting`."""


def created(event: ev.SandboxCreated, version: int, at: datetime) -> Sandbox:
    fields = {f: getattr(event, f) for f in event.__struct_fields__ if f in Sandbox.__struct_fields__}
    return Sandbox(id=event.sandbox_id, version=version, state="pending_build" if event.pending_build else "creating",
                   desired_state="started", created_at=at, updated_at=at, **fields)


def evolve(sandbox: Sandbox | None, event: Any, version: int, at: datetime) -> Sandbox | None:
    """Apply one recorded event. Events of other aggregates are ignored."""
    if isinstance(event, ev.SandboxCreated):
        return created(event, version, at)
    if sandbox is None:
        return None
    change: dict[str, Any] = {"version": version, "updated_at": at}
    match event:
        case ev.SandboxStarted():
            change |= {"state": "started", "error_reason": None, "recoverable": False}
        case ev.SandboxStartRequested():
            change |= {"state": "starting", "desired_state": "started", "error_reason": None}
        case ev.SandboxStopRequested():
            change |= {"state": "stopping", "desired_state": "stopped"}
        case ev.SandboxStopped():
            change |= {"state": "stopped"}
        case ev.SandboxDestroyRequested():
            change |= {"state": "destroying", "desired_state": "destroyed"}
        case ev.SandboxDestroyed():
            change |= {"state": "destroyed"}
        case ev.SandboxFailed(reason=reason, recoverable=recoverable, operation=operation):
            change |= {"state": "error", "error_reason": reason, "recoverable": recoverable,
                       "error_operation": operation}
        case ev.SandboxBackedUp(image=image):
            change |= {"backup_image": image, "backup_at": at}
            del change["updated_at"]  # a backup is no activity and no state change
        case ev.SandboxLabelsReplaced(labels=labels):
            change |= {"labels": labels}
        case ev.SandboxTimersChanged():
            for name in ("auto_stop_interval", "auto_archive_interval", "auto_delete_interval"):
                if getattr(event, name) is not None:
                    change[name] = getattr(event, name)
        case ev.SandboxArchiveRequested():
            change |= {"state": "archiving", "desired_state": "archived"}
        case ev.SandboxArchived(image=image):
            change |= {"state": "archived", "archive_image": image}
        case ev.SandboxRestoreRequested():
            change |= {"state": "restoring", "desired_state": "started", "error_reason": None}
        case ev.SandboxResizeRequested():
            change |= {"state": "resizing", "resume_state": sandbox.state}
        case ev.SandboxResized(cpu=cpu, memory=memory):
            change |= {"state": sandbox.resume_state or "started", "cpu": cpu, "memory": memory,
                       "resume_state": None}
        case ev.SandboxRecoverRequested():
            change |= {"state": "starting", "desired_state": "started", "error_reason": None, "recoverable": False}
        case ev.SandboxBuildStarted():
            change |= {"state": "building_snapshot"}
        case ev.SandboxSnapshotReady(image=image, snapshot_ref=ref):
            change |= {"state": "creating", "image": image, "snapshot_ref": ref}
        case ev.SandboxBuildFailed(reason=reason):
            change |= {"state": "build_failed", "error_reason": reason, "recoverable": False}
        case ev.SandboxPullingSnapshot():
            change |= {"state": "pulling_snapshot"}
        case ev.SandboxSnapshotStarted():
            change |= {"state": "snapshotting", "resume_state": sandbox.state, "capturing": event.snapshot_id}
        case ev.SandboxSnapshotFinished():
            change |= {"state": sandbox.resume_state or "started", "resume_state": None, "capturing": ""}
        case ev.SandboxSigningKeyRotated(signing_key=key):
            change |= {"signing_key": key}
        case gd.SandboxNetworkSettingsChanged():
            change |= {"network_block_all": event.network_block_all, "network_allow_list": event.network_allow_list,
                       "network_revision": event.revision}
        case gd.SandboxNetworkApplied(revision=revision):
            change |= {"network_applied_revision": max(revision, sandbox.network_applied_revision)}
            del change["updated_at"]  # what the runner did, not activity
        case gd.SandboxOomKilled():
            change |= {"oom_kills": sandbox.oom_kills + event.kills, "last_oom_at": at, "oom_run": event.run,
                       "oom_run_kills": event.count}
            del change["updated_at"]
        case ev.SandboxPublicChanged(public=public):
            change |= {"public": public}
        case _:
            return sandbox
    return msgspec.structs.replace(sandbox, **change)


# --- decisions ---------------------------------------------------------------------------------


def request_start(sandbox: Sandbox, reason: str = "user") -> list[Any]:
    """`reason`: `user`, or what woke the sandbox (`preview-visit`)."""
    if sandbox.state in ("started", "starting", "creating", "restoring"):
        return []
    if sandbox.state == "archived" and sandbox.archive_image:
        return [ev.SandboxRestoreRequested(sandbox_id=sandbox.id, image=sandbox.archive_image, reason=reason)]
    if sandbox.state in ("stopped", "error"):
        return [ev.SandboxStartRequested(sandbox_id=sandbox.id, reason=reason)]
    raise InvalidState(f"Sandbox {sandbox.id} cannot be started while it is {sandbox.state}")


def request_stop(sandbox: Sandbox, force: bool = False, reason: str = "user") -> list[Any]:
    """Allowed while the sandbox is still being created or started: the runner carries out its commands
    in order, so the stop follows the start and the sandbox ends stopped."""
    if sandbox.state in ("stopped", "stopping", "archived", "archiving"):
        return []
    if sandbox.state in ("started", "error", "creating", "pulling_snapshot", "starting", "restoring"):
        return [ev.SandboxStopRequested(sandbox_id=sandbox.id, force=force, reason=reason)]
    raise InvalidState(f"Sandbox {sandbox.id} cannot be stopped while it is {sandbox.state}")


def request_destroy(sandbox: Sandbox, reason: str = "user") -> list[Any]:
    if sandbox.state in ("destroying", "destroyed"):
        return []
    return [
        ev.SandboxDestroyRequested(sandbox_id=sandbox.id, reason=reason),
        ev.SandboxNameReleased(organization_id=sandbox.organization_id, name=sandbox.name, sandbox_id=sandbox.id),
    ]


def replace_labels(sandbox: Sandbox, labels: dict[str, str]) -> list[Any]:
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    if labels == sandbox.labels:
        return []
    return [ev.SandboxLabelsReplaced(sandbox_id=sandbox.id, labels=labels)]


def request_archive(sandbox: Sandbox, reason: str = "user") -> list[Any]:
    if sandbox.state in ("archived", "archiving"):
        return []
    if sandbox.state != "stopped":
        raise InvalidState(f"Sandbox {sandbox.id} must be stopped to be archived (it is {sandbox.state})")
    if sandbox.auto_delete_interval == 0:
        raise InvalidState(f"Sandbox {sandbox.id} is ephemeral and cannot be archived")
    return [ev.SandboxArchiveRequested(sandbox_id=sandbox.id, reason=reason)]


def request_resize(sandbox: Sandbox, cpu: int | None, memory: int | None, max_cpu: int, max_memory: int) -> list[Any]:
    cpu = sandbox.cpu if cpu is None else cpu
    memory = sandbox.memory if memory is None else memory
    if not 1 <= cpu <= max_cpu or not 1 <= memory <= max_memory:
        raise InvalidRequest(f"cpu must be 1-{max_cpu} and memory 1-{max_memory} GiB")
    if sandbox.state not in ("started", "stopped"):
        raise InvalidState(f"Sandbox {sandbox.id} can be resized only when started or stopped (it is {sandbox.state})")
    if (cpu, memory) == (sandbox.cpu, sandbox.memory):
        return []
    return [ev.SandboxResizeRequested(sandbox_id=sandbox.id, cpu=cpu, memory=memory)]


def request_recover(sandbox: Sandbox) -> list[Any]:
    if sandbox.state != "error":
        raise InvalidState(f"Sandbox {sandbox.id} is not in error (it is {sandbox.state})")
    if not sandbox.recoverable:
        raise InvalidState(f"Sandbox {sandbox.id} cannot be recovered: {sandbox.error_reason}")
    if sandbox.error_operation == CONTAINER_LOST and sandbox.backup_image:
        return [ev.SandboxRestoreRequested(sandbox_id=sandbox.id, image=sandbox.backup_image)]
    return [ev.SandboxRecoverRequested(sandbox_id=sandbox.id)]


def set_timers(sandbox: Sandbox, *, auto_stop: int | None = None, auto_archive: int | None = None,
               auto_delete: int | None = None) -> list[Any]:
    """Daytona's semantics: auto-stop 0 = never; auto-archive 0 = the maximum, larger clamped;
    auto-delete negative = never, 0 = delete as soon as it stops."""
    if auto_stop is not None and auto_stop < 0:
        raise InvalidRequest("auto-stop interval must not be negative (0 disables it)")
    if auto_archive is not None:
        if auto_archive < 0:
            raise InvalidRequest("auto-archive interval must not be negative (0 means the maximum)")
        auto_archive = ARCHIVE_MAX_MINUTES if auto_archive == 0 else min(auto_archive, ARCHIVE_MAX_MINUTES)
    if auto_delete is not None and auto_delete < 0:
        auto_delete = -1
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    changed = ev.SandboxTimersChanged(sandbox_id=sandbox.id, auto_stop_interval=auto_stop,
                                      auto_archive_interval=auto_archive, auto_delete_interval=auto_delete)
    same = all(getattr(changed, name) in (None, getattr(sandbox, name))
               for name in ("auto_stop_interval", "auto_archive_interval", "auto_delete_interval"))
    return [] if same else [changed]


def set_public(sandbox: Sandbox, public: bool) -> list[Any]:
    """Previews open to anyone, or private again (the preview token, an API key or a signed URL)."""
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    if sandbox.public == public:
        return []
    return [ev.SandboxPublicChanged(sandbox_id=sandbox.id, public=public)]


def issue_signing_key(sandbox: Sandbox, candidate: str) -> list[Any]:
    """The key of signed file URLs is issued the first time it is asked for, then kept."""
    if sandbox.signing_key:
        return []
    return rotate_signing_key(sandbox, candidate)


def rotate_signing_key(sandbox: Sandbox, candidate: str) -> list[Any]:
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    return [ev.SandboxSigningKeyRotated(sandbox_id=sandbox.id, signing_key=candidate)]


def start_snapshot(sandbox: Sandbox, snapshot_id: str) -> list[Any]:
    """Daytona's `snapshotting`: only a started or stopped sandbox (its container exists) is captured."""
    if sandbox.state not in ("started", "stopped"):
        raise InvalidState(f"Sandbox {sandbox.id} must be started or stopped to be snapshotted (it is {sandbox.state})")
    return [ev.SandboxSnapshotStarted(sandbox_id=sandbox.id, snapshot_id=snapshot_id)]


def finish_snapshot(sandbox: Sandbox, snapshot_id: str, ok: bool) -> list[Any]:
    if sandbox.state != "snapshotting":
        return []
    return [ev.SandboxSnapshotFinished(sandbox_id=sandbox.id, snapshot_id=snapshot_id, ok=ok)]


def snapshot_progress(sandbox: Sandbox, snapshot_state: str, reason: str | None, image: str,
                      snapshot_ref: str) -> list[Any]:
    """A sandbox waiting for its snapshot follows the build: `building_snapshot` while it builds, `creating`
    once it is active, `build_failed` (with the build's reason) if it failed. A sandbox being captured
    (`snapshotting`) returns to its state once its snapshot is settled."""
    if sandbox.state == "snapshotting":
        if snapshot_state in ("active", "error", "build_failed", "inactive", "removing", "removed"):
            return finish_snapshot(sandbox, sandbox.capturing, ok=snapshot_state == "active")
        return []
    if sandbox.state not in WAITING_FOR_BUILD:
        return []
    if snapshot_state == "active":
        return [ev.SandboxSnapshotReady(sandbox_id=sandbox.id, image=image, snapshot_ref=snapshot_ref)]
    if snapshot_state in ("error", "build_failed", "inactive", "removing", "removed"):
        return [ev.SandboxBuildFailed(sandbox_id=sandbox.id, reason=reason or f"the snapshot is {snapshot_state}")]
    if snapshot_state in ("building", "pulling") and sandbox.state == "pending_build":
        return [ev.SandboxBuildStarted(sandbox_id=sandbox.id)]
    return []


def observe(sandbox: Sandbox, fact: Any) -> list[Any]:
    """Turn what a runner saw into sandbox events, if it moves the sandbox along.

    Facts are at-least-once and may arrive late (a create finishing after a delete was asked):
    a fact that does not fit the current state is dropped, which makes recording idempotent.
    """
    if sandbox.state == "destroyed" or fact.runner_id != sandbox.runner_id:
        return []
    match fact:
        case gd.SandboxContainerNetworkApplied():
            return guard.observe_network_applied(sandbox, fact)
        case gd.SandboxContainerOomKilled():
            return guard.observe_oom(sandbox, fact)
        case facts.SandboxContainerStarted(container_id=container_id):
            # Toward what was asked, even from `stopped`: a stale stop that ran after a newer start.
            if sandbox.state in ("creating", "pulling_snapshot", "starting", "restoring") or (
                    sandbox.desired_state == "started" and sandbox.state in ("stopped", "error")):
                return [ev.SandboxStarted(sandbox_id=sandbox.id, runner_id=fact.runner_id, container_id=container_id)]
        case facts.SandboxSnapshotFetching():
            if sandbox.state == "creating":
                return [ev.SandboxPullingSnapshot(sandbox_id=sandbox.id, runner_id=fact.runner_id)]
        case facts.SandboxContainerStopped(exit_code=code):
            if sandbox.state in ("stopping", "started", "error"):
                return [ev.SandboxStopped(sandbox_id=sandbox.id, runner_id=fact.runner_id, exit_code=code)]
        case facts.SandboxContainerRemoved():
            if sandbox.state == "destroying":
                return [ev.SandboxDestroyed(sandbox_id=sandbox.id, runner_id=fact.runner_id)]
        case facts.SandboxContainerArchived(image=image):
            if sandbox.state == "archiving":
                return [ev.SandboxArchived(sandbox_id=sandbox.id, runner_id=fact.runner_id, image=image)]
        case facts.SandboxContainerResized(cpu=cpu, memory=memory):
            if sandbox.state == "resizing":
                return [ev.SandboxResized(sandbox_id=sandbox.id, runner_id=fact.runner_id, cpu=cpu, memory=memory)]
        case facts.SandboxContainerBackedUp(image=image):
            if sandbox.state not in ("destroying", "destroyed"):
                return [ev.SandboxBackedUp(sandbox_id=sandbox.id, runner_id=fact.runner_id, image=image)]
        case facts.SandboxContainerFailed(reason=reason, recoverable=recoverable, operation=operation):
            if operation == CONTAINER_LOST and sandbox.backup_image:
                recoverable = True  # it can be restored from its last backup
            if sandbox.state in TRANSITIONAL or sandbox.state in ("started", "stopped"):
                return [ev.SandboxFailed(sandbox_id=sandbox.id, reason=reason, recoverable=recoverable,
                                         operation=operation)]
    return []
