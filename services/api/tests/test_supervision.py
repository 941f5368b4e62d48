"""Deadlines and timers as pure decisions over a sandbox and the time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from corral_api.domain import sandbox as domain
from corral_api.domain import supervision
from corral_api.domain.errors import InvalidRequest, InvalidState
from corral_contracts import sandbox as ev

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def box(state: str = "started", desired: str = "started", **fields: object) -> domain.Sandbox:
    created = ev.SandboxCreated(sandbox_id="s", organization_id="o", name="n", runner_id="r", image="i",
                                snapshot="s", user="u")
    sandbox = domain.created(created, 1, T0)
    return msgspec.structs.replace(sandbox, state=state, desired_state=desired, **fields)


def test_a_transitional_state_past_its_deadline_fails_recoverably() -> None:
    sandbox = box("stopping", "stopped")
    assert supervision.overdue(sandbox, T0 + timedelta(seconds=89)) == []
    [failed] = supervision.overdue(sandbox, T0 + timedelta(seconds=91))
    assert failed.recoverable and "stopping did not finish within 90s" in failed.reason
    assert supervision.overdue(box(), T0 + timedelta(days=9)) == [], "settled states have no deadline"


def test_auto_stop_counts_reported_activity() -> None:
    sandbox = box(auto_stop_interval=15)
    assert supervision.timer_due(sandbox, T0 + timedelta(minutes=14), None) == []
    [stop] = supervision.timer_due(sandbox, T0 + timedelta(minutes=16), None)
    assert isinstance(stop, ev.SandboxStopRequested) and stop.reason == "auto-stop"
    busy = T0 + timedelta(minutes=10)
    assert supervision.timer_due(sandbox, T0 + timedelta(minutes=16), busy) == [], "a running job is activity"


def test_auto_stop_zero_means_never() -> None:
    assert supervision.timer_due(box(auto_stop_interval=0), T0 + timedelta(days=30), None) == []


def test_an_ephemeral_sandbox_is_destroyed_when_idle_or_stopped() -> None:
    events = supervision.timer_due(box(auto_delete_interval=0), T0 + timedelta(minutes=16), None)
    assert isinstance(events[0], ev.SandboxDestroyRequested)
    stopped = box("stopped", "stopped", auto_delete_interval=0)
    assert isinstance(supervision.timer_due(stopped, T0, None)[0], ev.SandboxDestroyRequested)


def test_auto_archive_and_auto_delete_of_stopped_sandboxes() -> None:
    stopped = box("stopped", "stopped", auto_archive_interval=60)
    assert supervision.timer_due(stopped, T0 + timedelta(minutes=59), None) == []
    [archive] = supervision.timer_due(stopped, T0 + timedelta(minutes=61), None)
    assert isinstance(archive, ev.SandboxArchiveRequested) and archive.reason == "auto-archive"
    doomed = box("stopped", "stopped", auto_delete_interval=30, auto_archive_interval=60)
    assert isinstance(supervision.timer_due(doomed, T0 + timedelta(minutes=31), None)[0], ev.SandboxDestroyRequested)


def test_a_shorter_minute_only_scales_the_clock() -> None:
    sandbox = box(auto_stop_interval=2)
    assert supervision.timer_due(sandbox, T0 + timedelta(seconds=3), None, minute=2.0) == []
    assert supervision.timer_due(sandbox, T0 + timedelta(seconds=5), None, minute=2.0)


def test_timer_endpoints_follow_daytona() -> None:
    sandbox = box()
    [changed] = domain.set_timers(sandbox, auto_archive=0)
    assert changed.auto_archive_interval == domain.ARCHIVE_MAX_MINUTES
    [changed] = domain.set_timers(sandbox, auto_archive=10**6)
    assert changed.auto_archive_interval == domain.ARCHIVE_MAX_MINUTES
    [changed] = domain.set_timers(box(auto_delete_interval=5), auto_delete=-7)
    assert changed.auto_delete_interval == -1
    with pytest.raises(InvalidRequest):
        domain.set_timers(sandbox, auto_stop=-1)
    assert domain.set_timers(sandbox, auto_stop=sandbox.auto_stop_interval) == []


def test_archive_restore_resize_and_recover_decisions() -> None:
    with pytest.raises(InvalidState):
        domain.request_archive(box())
    assert isinstance(domain.request_archive(box("stopped", "stopped"))[0], ev.SandboxArchiveRequested)
    archived = box("archived", "archived", archive_image="corral-archive:s")
    [restore] = domain.request_start(archived)
    assert isinstance(restore, ev.SandboxRestoreRequested) and restore.image == "corral-archive:s"
    [resize] = domain.request_resize(box(), 2, None, max_cpu=4, max_memory=8)
    assert (resize.cpu, resize.memory) == (2, 1)
    with pytest.raises(InvalidRequest):
        domain.request_resize(box(), 9, None, max_cpu=4, max_memory=8)
    with pytest.raises(InvalidState):
        domain.request_recover(box("error", "started", recoverable=False, error_reason="gone"))
    assert domain.request_recover(box("error", "started", recoverable=True))


def test_a_stale_stop_is_undone_by_a_newer_start() -> None:
    from corral_contracts import runner as facts

    sandbox = box("stopped", "started")
    assert supervision.unconverged(sandbox)
    started = facts.SandboxContainerStarted(runner_id="r", sandbox_id="s", container_id="c")
    assert isinstance(domain.observe(sandbox, started)[0], ev.SandboxStarted)
