"""Snapshot and Volume aggregates, given events / when a decision / then events; and sandboxes that wait
for a build."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from corral_contracts import runner as rc
from corral_contracts import sandbox as sev
from corral_contracts import snapshot as ev
from corral_contracts import snapshot_manager as sm
from corral_contracts import volume as vev
from corral_contracts.runner import RunnerHeartbeat
from corral_api.domain import sandbox as sandbox_domain
from corral_api.domain import snapshot as domain
from corral_api.domain import supervision
from corral_api.domain import volume as volume_domain
from corral_api.domain.errors import InvalidRequest, InvalidState
from corral_api.domain.scheduling import choose_runner

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fold(*events, fn=domain.evolve):  # type: ignore[no-untyped-def]
    state = None
    for version, event in enumerate(events, 1):
        state = fn(state, event, version, NOW)
    return state


def created(source: str = "dockerfile") -> ev.SnapshotCreated:
    return ev.SnapshotCreated(snapshot_id="s1", organization_id="o", name="snap", ref="corral-snapshot:abc",
                              source=source, dockerfile="FROM x\n")


def test_a_build_goes_pending_building_active_and_every_event_names_its_state() -> None:
    snapshot = fold(created())
    assert snapshot.state == "pending"
    started = domain.observe(snapshot, sm.ImageBuildStarted(snapshot_id="s1"))
    snapshot = fold(created(), *started)
    assert snapshot.state == "building" and [ev.state_after(e) for e in started] == ["building"]
    built = domain.observe(snapshot, sm.ImageReady(snapshot_id="s1", ref="corral-snapshot:abc", size=10, python="3.11.2"))
    snapshot = fold(created(), *started, *built)
    assert (snapshot.state, snapshot.size, snapshot.python) == ("active", 10, "3.11.2")
    assert domain.observe(snapshot, sm.ImageReady(snapshot_id="s1", ref="r")) == []  # a repeated fact records nothing


def test_a_failed_build_keeps_its_reason_and_can_be_built_again() -> None:
    failed = fold(created(), ev.SnapshotBuildFailed(snapshot_id="s1", reason="no base image"))
    assert (failed.state, failed.error_reason) == ("build_failed", "no base image")
    with pytest.raises(InvalidRequest, match="no base image"):
        domain.usable(failed)
    again = fold(created(), ev.SnapshotBuildFailed(snapshot_id="s1", reason="x"), *domain.retry_build(failed))
    assert (again.state, again.attempt, again.error_reason) == ("pending", 2, None)


def test_deactivate_activate_and_remove_only_when_unused() -> None:
    active = fold(created(), ev.SnapshotBuilt(snapshot_id="s1", ref="r"))
    inactive = fold(created(), ev.SnapshotBuilt(snapshot_id="s1", ref="r"), *domain.deactivate(active))
    assert inactive.state == "inactive" and domain.deactivate(inactive) == []
    assert [type(e) for e in domain.activate(inactive)] == [ev.SnapshotActivated]
    with pytest.raises(InvalidState, match="in use by 2"):
        domain.request_remove(active, used_by=2)
    removal = domain.request_remove(active, used_by=0)
    assert [ev.state_after(e) for e in removal] == ["removing", None]
    with pytest.raises(InvalidRequest):
        domain.request_remove(fold(created("platform")), used_by=0)


def test_a_sandbox_capture_fact_completes_a_sandbox_snapshot() -> None:
    snapshot = fold(created("sandbox"))
    fact = rc.SandboxSnapshotCaptured(runner_id="r", sandbox_id="x", snapshot_id="s1", image="corral-snapshot:abc")
    assert [type(e) for e in domain.observe(snapshot, fact)] == [ev.SnapshotBuilt]


def test_an_overdue_build_ends_in_error() -> None:
    snapshot = fold(created())
    assert domain.overdue(snapshot, NOW + timedelta(seconds=10), 60) == []
    assert domain.overdue(snapshot, NOW + timedelta(seconds=61), 60)[0].state == "error"


def test_a_sandbox_follows_its_build() -> None:
    sandbox = fold(sev.SandboxCreated(sandbox_id="b", organization_id="o", name="b", runner_id="r", image="i",
                                      snapshot="s", user="u", snapshot_id="s1", pending_build=True),
                   fn=sandbox_domain.evolve)
    assert sandbox.state == "pending_build"
    building = sandbox_domain.snapshot_progress(sandbox, "building", None, "i", "ref")
    assert [type(e) for e in building] == [sev.SandboxBuildStarted]
    ready = sandbox_domain.snapshot_progress(sandbox, "active", None, "i", "ref")
    assert [type(e) for e in ready] == [sev.SandboxSnapshotReady]
    failed = sandbox_domain.snapshot_progress(sandbox, "build_failed", "why", "i", "ref")
    after = sandbox_domain.evolve(sandbox, failed[0], 2, NOW)
    assert (after.state, after.error_reason) == ("build_failed", "why")
    late = supervision.overdue(sandbox, NOW + timedelta(hours=2))
    assert [type(e) for e in late] == [sev.SandboxBuildFailed]


def test_volumes_states_deletion_and_mount_checks() -> None:
    volume = fold(vev.VolumeCreated(volume_id="v", organization_id="o", name="data"), fn=volume_domain.evolve)
    assert volume.state == "pending_create"
    ready = volume_domain.observe(volume, sm.VolumeStorageReady(volume_id="v"))
    volume = volume_domain.evolve(volume, ready[0], 2, NOW)
    assert volume.state == "ready"
    with pytest.raises(InvalidState, match="in use"):
        volume_domain.request_delete(volume, mounted_by=1)
    assert [vev.state_after(e) for e in volume_domain.request_delete(volume, mounted_by=0)] == ["pending_delete", None]
    for path, sub in (("relative", ""), ("/", ""), ("/opt/corral/x", ""), ("/data", "../up")):
        with pytest.raises(InvalidRequest):
            volume_domain.check_mount(path, sub)
    mount = volume_domain.check_mount("/data/", "a/./b/")
    assert mount is not None and (mount.mount_path, mount.subpath) == ("/data", "a/b")


def test_scheduling_prefers_the_least_loaded_runner_then_one_holding_the_snapshot() -> None:
    runners = [RunnerHeartbeat(runner_id="a", toolbox_url="", started_at=""),
               RunnerHeartbeat(runner_id="b", toolbox_url="", started_at="", snapshots=["ref"])]
    assert choose_runner(runners, {}, "ref") == "b"
    assert choose_runner(runners, {"b": 1}, "ref") == "a"
    assert choose_runner(runners, {}) == "a"


def test_a_runner_fetching_the_snapshot_shows_as_pulling_snapshot_then_started() -> None:
    sandbox = fold(sev.SandboxCreated(sandbox_id="p", organization_id="o", name="p", runner_id="r", image="i",
                                      snapshot="s", user="u", snapshot_ref="ref"), fn=sandbox_domain.evolve)
    pulling = sandbox_domain.observe(sandbox, rc.SandboxSnapshotFetching(runner_id="r", sandbox_id="p"))
    sandbox = sandbox_domain.evolve(sandbox, pulling[0], 2, NOW)
    assert sandbox.state == "pulling_snapshot"
    started = sandbox_domain.observe(sandbox, rc.SandboxContainerStarted(runner_id="r", sandbox_id="p", container_id="c"))
    assert [type(e) for e in started] == [sev.SandboxStarted]
    assert supervision.overdue(sandbox, NOW + timedelta(minutes=30)) == []  # large images take their time
