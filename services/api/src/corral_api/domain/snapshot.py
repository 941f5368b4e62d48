"""The Snapshot aggregate: state folded from its events, and pure decisions that return new events."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from corral_contracts import runner as runner_facts
from corral_contracts import snapshot as ev
from corral_contracts import snapshot_manager as facts

from .errors import InvalidRequest, InvalidState

SETTLED = frozenset({"active", "inactive", "error", "build_failed"})
BUILDING = frozenset({"pending", "building", "pulling"})


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    organization_id: str
    name: str
    general: bool
    source: str
    image_name: str
    dockerfile: str
    context_hashes: list[str]
    build_hash: str
    source_sandbox_id: str
    ref: str
    entrypoint: list[str]
    cpu: int
    gpu: int
    memory: int
    disk: int
    hidden: bool
    state: str
    created_at: datetime
    updated_at: datetime
    error_reason: str | None = None
    size: int | None = None
    python: str = ""
    attempt: int = 1


def build_hash(dockerfile: str, context_hashes: list[str]) -> str:
    """Identical Dockerfiles with identical contexts are one snapshot (Daytona's `daytona-<sha256>`)."""
    return hashlib.sha256("\n".join([dockerfile, *sorted(context_hashes)]).encode()).hexdigest()


def evolve(snapshot: Snapshot | None, event: Any, version: int, at: datetime) -> Snapshot | None:
    if isinstance(event, ev.SnapshotCreated):
        fields = {f: getattr(event, f) for f in event.__struct_fields__ if f != "snapshot_id"}
        return Snapshot(id=event.snapshot_id, version=version, state=ev.state_after(event) or "pending",
                        created_at=at, updated_at=at, **fields)
    if snapshot is None:
        return None
    change: dict[str, Any] = {"version": version, "updated_at": at}
    state = ev.state_after(event)
    if state is not None:
        change["state"] = state
    match event:
        case ev.SnapshotBuildStarted(state=started):
            change["error_reason"] = None
            if started == "pending":  # built again after a failure
                change["attempt"] = snapshot.attempt + 1
        case ev.SnapshotBuilt(ref=ref, size=size, python=python, entrypoint=entrypoint):
            change |= {"ref": ref, "size": size, "python": python, "error_reason": None}
            if entrypoint and not snapshot.entrypoint:
                change["entrypoint"] = entrypoint
        case ev.SnapshotBuildFailed(reason=reason):
            change["error_reason"] = reason
        case _ if state is None:
            return snapshot
    return msgspec.structs.replace(snapshot, **change)


# --- decisions ---------------------------------------------------------------------------------


def deactivate(snapshot: Snapshot) -> list[Any]:
    if snapshot.state == "inactive":
        return []
    if snapshot.state != "active":
        raise InvalidState(f"Snapshot {snapshot.name} is {snapshot.state}; only an active snapshot can be deactivated")
    return [ev.SnapshotDeactivated(snapshot_id=snapshot.id)]


def activate(snapshot: Snapshot) -> list[Any]:
    if snapshot.state == "active":
        return []
    if snapshot.state != "inactive":
        raise InvalidState(f"Snapshot {snapshot.name} is {snapshot.state}; only an inactive snapshot can be activated")
    return [ev.SnapshotActivated(snapshot_id=snapshot.id)]


def request_remove(snapshot: Snapshot, used_by: int) -> list[Any]:
    """Refused while a live sandbox uses it (409); a general snapshot of the platform is never removed."""
    if snapshot.state in ("removing", "removed"):
        return []
    if snapshot.source == "platform":
        raise InvalidRequest(f"Snapshot {snapshot.name} is the platform's default and cannot be removed")
    if used_by:
        raise InvalidState(f"Snapshot {snapshot.name} is in use by {used_by} sandbox(es); delete them first")
    return [ev.SnapshotRemoveRequested(snapshot_id=snapshot.id),
            ev.SnapshotNameReleased(organization_id=snapshot.organization_id, name=snapshot.name,
                                    snapshot_id=snapshot.id)]


def usable(snapshot: Snapshot) -> None:
    if snapshot.state != "active":
        detail = f": {snapshot.error_reason}" if snapshot.error_reason else ""
        raise InvalidRequest(f"Snapshot {snapshot.name} is {snapshot.state}{detail}")


def retry_build(snapshot: Snapshot) -> list[Any]:
    """Build again a snapshot whose build failed (a sandbox asked for the same `buildInfo` again)."""
    if snapshot.state not in ("error", "build_failed"):
        return []
    return [ev.SnapshotBuildStarted(snapshot_id=snapshot.id, state="pending")]


def observe(snapshot: Snapshot, fact: Any) -> list[Any]:
    """What the snapshot manager (or a runner, for a sandbox's filesystem) saw. Stale facts record nothing."""
    if snapshot.state in ("removing", "removed"):
        if isinstance(fact, facts.ImageRemoved) and snapshot.state == "removing":
            return [ev.SnapshotRemoved(snapshot_id=snapshot.id)]
        return []
    match fact:
        case facts.ImageBuildStarted(state=state):
            if snapshot.state == "pending":
                return [ev.SnapshotBuildStarted(snapshot_id=snapshot.id, state=state)]
        case facts.ImageReady(ref=ref, size=size, python=python, entrypoint=entrypoint):
            if snapshot.state in BUILDING:
                return [ev.SnapshotBuilt(snapshot_id=snapshot.id, ref=ref, size=size, python=python,
                                         entrypoint=entrypoint)]
        case facts.ImageBuildFailed(state=state, reason=reason):
            if snapshot.state in BUILDING:
                return [ev.SnapshotBuildFailed(snapshot_id=snapshot.id, state=state, reason=reason)]
        case runner_facts.SandboxSnapshotCaptured(image=image, size=size):
            if snapshot.state in BUILDING:
                return [ev.SnapshotBuilt(snapshot_id=snapshot.id, ref=image, size=size)]
        case runner_facts.SandboxSnapshotCaptureFailed(reason=reason):
            if snapshot.state in BUILDING:
                return [ev.SnapshotBuildFailed(snapshot_id=snapshot.id, state="error", reason=reason)]
    return []


def overdue(snapshot: Snapshot, now: datetime, limit: float) -> list[Any]:
    """A build that outlived its deadline (the snapshot manager died mid-build) ends in `error`."""
    if snapshot.state not in BUILDING or (now - snapshot.updated_at).total_seconds() <= limit:
        return []
    return [ev.SnapshotBuildFailed(snapshot_id=snapshot.id, state="error",
                                   reason=f"{snapshot.state} did not finish within {limit:.0f}s")]
