"""What the supervisor decides on each sweep, as pure functions of a sandbox and the time.

- Deadlines: no sandbox stays in a transitional state forever; past its deadline it is in `error`
  with a reason, and `recoverable` (nothing was lost: the operation can be tried again).
- Timers (Daytona's semantics): auto-stop after `auto_stop_interval` idle minutes (0 = never),
  auto-archive of a stopped sandbox, auto-delete (0 = as soon as it stops, negative = never).
  Idle means no outside activity *and* nothing running inside (the runner reports running commands
  and open terminals as activity), so a long job is never stopped while it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from corral_contracts import sandbox as ev

from . import sandbox as domain

DEADLINES = {
    "creating": 180.0, "starting": 120.0, "stopping": 90.0, "destroying": 180.0,
    "archiving": 900.0, "restoring": 900.0, "resizing": 60.0,
    "pending_build": 4000.0, "building_snapshot": 4000.0, "snapshotting": 900.0,
    "pulling_snapshot": 3600.0,
}
"""Seconds a sandbox may stay in each transitional state before it is failed."""


def scaled(factor: float) -> dict[str, float]:
    return {state: seconds * factor for state, seconds in DEADLINES.items()}


def unconverged(sandbox: domain.Sandbox) -> bool:
    """Not where it was asked to be: in a transitional state, or stopped while it should run
    (a container that exited on its own, or a stale stop that ran after a newer start)."""
    return sandbox.state in domain.TRANSITIONAL or (sandbox.state == "stopped" and sandbox.desired_state == "started")


def overdue(sandbox: domain.Sandbox, now: datetime, deadlines: dict[str, float] = DEADLINES) -> list[Any]:
    limit = deadlines.get(sandbox.state)
    if limit is None or now - sandbox.updated_at <= timedelta(seconds=limit):
        return []
    if sandbox.state == "snapshotting":  # the sandbox is fine; the capture is given up (its snapshot fails too)
        return domain.finish_snapshot(sandbox, sandbox.capturing, ok=False)
    if sandbox.state in domain.WAITING_FOR_BUILD:
        return [ev.SandboxBuildFailed(sandbox_id=sandbox.id,
                                      reason=f"the snapshot build did not finish within {limit:.0f}s")]
    return [ev.SandboxFailed(sandbox_id=sandbox.id, operation=sandbox.state, recoverable=True,
                             reason=f"{sandbox.state} did not finish within {limit:.0f}s")]


def last_activity(sandbox: domain.Sandbox, reported: datetime | None) -> datetime:
    """Every state change counts as activity, so the archive and delete clocks start at the stop."""
    return max(sandbox.updated_at, reported) if reported else sandbox.updated_at


def timer_due(sandbox: domain.Sandbox, now: datetime, reported: datetime | None, minute: float = 60.0) -> list[Any]:
    """`minute` is how many seconds a timer minute lasts (60; shorter only to test the timers)."""
    idle = now - last_activity(sandbox, reported)

    def minutes(count: int) -> timedelta:
        return timedelta(seconds=count * minute)

    if sandbox.state == "started" and sandbox.desired_state == "started" and sandbox.auto_stop_interval > 0:
        if idle > minutes(sandbox.auto_stop_interval):
            if sandbox.auto_delete_interval == 0:
                return domain.request_destroy(sandbox, reason="auto-stop")
            return domain.request_stop(sandbox, reason="auto-stop")
    if sandbox.state == "stopped" and sandbox.desired_state == "stopped":
        if sandbox.auto_delete_interval >= 0 and idle >= minutes(sandbox.auto_delete_interval):
            return domain.request_destroy(sandbox, reason="auto-delete")
        if sandbox.auto_archive_interval > 0 and idle > minutes(sandbox.auto_archive_interval):
            return domain.request_archive(sandbox, reason="auto-archive")
    return []


def backup_due(sandbox: domain.Sandbox, now: datetime, every: timedelta, last_asked: datetime | None) -> bool:
    """A started, non-ephemeral sandbox is backed up when its last backup (or its start) is older than
    `every`, so a recoverable copy always exists (Daytona: hourly); one request per period."""
    if sandbox.state != "started" or sandbox.auto_delete_interval == 0:
        return False
    last = max(t for t in (sandbox.backup_at, sandbox.created_at, last_asked) if t is not None)
    return now - last >= every
