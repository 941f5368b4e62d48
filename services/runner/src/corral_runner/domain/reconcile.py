"""Reconciling at start-up: what the api says this runner holds versus the containers it finds."""

from __future__ import annotations

from typing import Literal

import msgspec

from corral_contracts.runner import SandboxAssignment

Action = Literal["create", "start", "stop", "remove", "report_started", "report_stopped", "report_removed",
                 "report_lost"]


class Observed(msgspec.Struct, frozen=True, kw_only=True):
    sandbox_id: str
    running: bool
    container: str = ""
    """Name of the container as found (an orphan's name need not follow the naming rule)."""
    exit_code: int | None = None
    container_id: str = ""
    pid: int = 0
    started_at: str = ""
    """The current (or last) run's start time, as the engine reports it."""


class Step(msgspec.Struct, frozen=True, kw_only=True):
    sandbox_id: str
    action: Action
    assignment: SandboxAssignment | None = None
    container: str = ""


def plan(assignments: list[SandboxAssignment], containers: list[Observed]) -> list[Step]:
    """One step per sandbox, so that afterwards containers and the log agree.

    Orphans (containers of sandboxes the log does not place here, or destroyed) are removed; sandboxes
    the log places here are driven toward their desired state, or reported lost if their container is
    gone after it had existed.
    """
    found = {c.sandbox_id: c for c in containers}
    wanted = {a.sandbox_id: a for a in assignments}
    steps = [Step(sandbox_id=sid, action="remove", container=c.container) for sid, c in found.items()
             if sid not in wanted]
    for sid, a in wanted.items():
        c = found.get(sid)
        if a.desired_state == "destroyed":
            steps.append(Step(sandbox_id=sid, action="remove" if c else "report_removed", assignment=a,
                              container=c.container if c else ""))
        elif c is None and a.state in ("pending_build", "building_snapshot"):
            continue  # no container yet: it is made once its snapshot is built
        elif c is None:
            steps.append(Step(sandbox_id=sid, action="create" if a.state in ("creating", "pulling_snapshot") else "report_lost",
                              assignment=a))
        elif a.desired_state == "started":
            steps.append(Step(sandbox_id=sid, action="report_started" if c.running else "start", assignment=a))
        elif a.desired_state == "stopped":
            steps.append(Step(sandbox_id=sid, action="stop" if c.running else "report_stopped", assignment=a))
    return steps
