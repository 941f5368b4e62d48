"""The Sandbox aggregate: state folded from its events, and pure decisions that return new events.

Desired state is what the user asked for; `state` is Daytona's observed state. A decision never
performs I/O: it looks at the current state and returns the events to record (possibly none, when the
request is already satisfied — every operation is idempotent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from corral_contracts import runner as facts
from corral_contracts import sandbox as ev

from .errors import InvalidState

TRANSITIONAL = frozenset({"creating", "starting", "stopping", "destroying"})


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
    state: str
    desired_state: str
    created_at: datetime
    updated_at: datetime
    error_reason: str | None = None
    recoverable: bool = False


def created(event: ev.SandboxCreated, version: int, at: datetime) -> Sandbox:
    fields = {f: getattr(event, f) for f in event.__struct_fields__ if f != "sandbox_id"}
    return Sandbox(id=event.sandbox_id, version=version, state="creating", desired_state="started",
                   created_at=at, updated_at=at, **fields)


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
        case ev.SandboxFailed(reason=reason, recoverable=recoverable):
            change |= {"state": "error", "error_reason": reason, "recoverable": recoverable}
        case ev.SandboxLabelsReplaced(labels=labels):
            change |= {"labels": labels}
        case _:
            return sandbox
    return msgspec.structs.replace(sandbox, **change)


# --- decisions ---------------------------------------------------------------------------------


def request_start(sandbox: Sandbox) -> list[Any]:
    if sandbox.state in ("started", "starting", "creating"):
        return []
    if sandbox.state in ("stopped", "error"):
        return [ev.SandboxStartRequested(sandbox_id=sandbox.id)]
    raise InvalidState(f"Sandbox {sandbox.id} cannot be started while it is {sandbox.state}")


def request_stop(sandbox: Sandbox, force: bool = False) -> list[Any]:
    if sandbox.state in ("stopped", "stopping"):
        return []
    if sandbox.state in ("started", "error"):
        return [ev.SandboxStopRequested(sandbox_id=sandbox.id, force=force)]
    raise InvalidState(f"Sandbox {sandbox.id} cannot be stopped while it is {sandbox.state}")


def request_destroy(sandbox: Sandbox) -> list[Any]:
    if sandbox.state in ("destroying", "destroyed"):
        return []
    return [
        ev.SandboxDestroyRequested(sandbox_id=sandbox.id),
        ev.SandboxNameReleased(organization_id=sandbox.organization_id, name=sandbox.name, sandbox_id=sandbox.id),
    ]


def replace_labels(sandbox: Sandbox, labels: dict[str, str]) -> list[Any]:
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    if labels == sandbox.labels:
        return []
    return [ev.SandboxLabelsReplaced(sandbox_id=sandbox.id, labels=labels)]


def observe(sandbox: Sandbox, fact: Any) -> list[Any]:
    """Turn what a runner saw into sandbox events, if it moves the sandbox along.

    Facts are at-least-once and may arrive late (a create finishing after a delete was asked):
    a fact that does not fit the current state is dropped, which makes recording idempotent.
    """
    if sandbox.state == "destroyed" or fact.runner_id != sandbox.runner_id:
        return []
    match fact:
        case facts.SandboxContainerStarted(container_id=container_id):
            if sandbox.state in ("creating", "starting") or (sandbox.state == "error" and sandbox.desired_state == "started"):
                return [ev.SandboxStarted(sandbox_id=sandbox.id, runner_id=fact.runner_id, container_id=container_id)]
        case facts.SandboxContainerStopped(exit_code=code):
            if sandbox.state in ("stopping", "started", "error"):
                return [ev.SandboxStopped(sandbox_id=sandbox.id, runner_id=fact.runner_id, exit_code=code)]
        case facts.SandboxContainerRemoved():
            if sandbox.state == "destroying":
                return [ev.SandboxDestroyed(sandbox_id=sandbox.id, runner_id=fact.runner_id)]
        case facts.SandboxContainerFailed(reason=reason, recoverable=recoverable, operation=operation):
            if sandbox.state in TRANSITIONAL or sandbox.state == "started":
                return [ev.SandboxFailed(sandbox_id=sandbox.id, reason=reason, recoverable=recoverable,
                                         operation=operation)]
    return []
