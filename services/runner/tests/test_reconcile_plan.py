"""Start-up reconciliation, as a pure plan."""

from __future__ import annotations

from corral_contracts.runner import CreateSandbox, SandboxAssignment
from corral_runner.domain.reconcile import Observed, plan


def assigned(sid: str, state: str, desired: str) -> SandboxAssignment:
    return SandboxAssignment(sandbox_id=sid, state=state, desired_state=desired,
                             command=CreateSandbox(sandbox_id=sid, image="img", user="daytona"))


def actions(assignments: list[SandboxAssignment], containers: list[Observed]) -> dict[str, str]:
    return {step.sandbox_id: step.action for step in plan(assignments, containers)}


def test_orphan_containers_are_removed() -> None:
    assert actions([], [Observed(sandbox_id="ghost", running=True)]) == {"ghost": "remove"}


def test_a_sandbox_killed_mid_create_is_created() -> None:
    assert actions([assigned("a", "creating", "started")], []) == {"a": "create"}


def test_a_sandbox_waiting_for_its_build_has_no_container_yet_and_is_left_alone() -> None:
    assert actions([assigned("a", "pending_build", "started"), assigned("b", "building_snapshot", "started"),
                    assigned("c", "pulling_snapshot", "started")], []) == {"c": "create"}


def test_a_started_sandbox_without_container_is_lost() -> None:
    assert actions([assigned("a", "started", "started")], []) == {"a": "report_lost"}


def test_desired_states_are_driven() -> None:
    got = actions(
        [assigned("up", "started", "started"), assigned("down", "stopping", "stopped"),
         assigned("gone", "destroying", "destroyed"), assigned("cold", "starting", "started"),
         assigned("idle", "stopped", "stopped")],
        [Observed(sandbox_id="up", running=True), Observed(sandbox_id="down", running=True),
         Observed(sandbox_id="gone", running=False), Observed(sandbox_id="cold", running=False),
         Observed(sandbox_id="idle", running=False)],
    )
    assert got == {"up": "report_started", "down": "stop", "gone": "remove", "cold": "start",
                   "idle": "report_stopped"}


def test_destroyed_without_container_is_reported_removed() -> None:
    assert actions([assigned("a", "destroying", "destroyed")], []) == {"a": "report_removed"}
