"""The Sandbox aggregate as given-events / when-decision / then-events: no I/O."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from corral_api.domain import sandbox as domain
from corral_api.domain.errors import InvalidState
from corral_contracts import runner as facts
from corral_contracts import sandbox as ev

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SID = "11111111-1111-4111-8111-111111111111"


def created() -> ev.SandboxCreated:
    return ev.SandboxCreated(sandbox_id=SID, organization_id="org", name="box", runner_id="r1", image="img",
                             snapshot="snap", user="daytona", labels={"code-toolbox-language": "python"})


def given(*events: object) -> domain.Sandbox:
    state = None
    for version, event in enumerate(events, start=1):
        state = domain.evolve(state, event, version, NOW)
    assert state is not None
    return state


def started() -> ev.SandboxStarted:
    return ev.SandboxStarted(sandbox_id=SID, runner_id="r1")


def test_a_new_sandbox_is_creating_and_wants_to_run() -> None:
    sandbox = given(created())
    assert (sandbox.state, sandbox.desired_state, sandbox.version) == ("creating", "started", 1)
    assert sandbox.labels == {"code-toolbox-language": "python"}


def test_the_runner_reporting_a_started_container_starts_it() -> None:
    fact = facts.SandboxContainerStarted(runner_id="r1", sandbox_id=SID, container_id="c")
    assert domain.observe(given(created()), fact) == [ev.SandboxStarted(sandbox_id=SID, runner_id="r1",
                                                                       container_id="c")]


def test_a_repeated_fact_records_nothing() -> None:
    fact = facts.SandboxContainerStarted(runner_id="r1", sandbox_id=SID, container_id="c")
    assert domain.observe(given(created(), started()), fact) == []


def test_a_fact_from_another_runner_is_ignored() -> None:
    fact = facts.SandboxContainerStarted(runner_id="elsewhere", sandbox_id=SID, container_id="c")
    assert domain.observe(given(created()), fact) == []


def test_a_late_start_after_delete_was_asked_is_dropped() -> None:
    sandbox = given(created(), ev.SandboxDestroyRequested(sandbox_id=SID))
    fact = facts.SandboxContainerStarted(runner_id="r1", sandbox_id=SID, container_id="c")
    assert domain.observe(sandbox, fact) == []


def test_stop_then_start_round_trip() -> None:
    sandbox = given(created(), started())
    assert domain.request_stop(sandbox) == [ev.SandboxStopRequested(sandbox_id=SID)]
    sandbox = given(created(), started(), ev.SandboxStopRequested(sandbox_id=SID))
    assert sandbox.state == "stopping" and sandbox.desired_state == "stopped"
    stopped = domain.observe(sandbox, facts.SandboxContainerStopped(runner_id="r1", sandbox_id=SID, exit_code=0))
    assert stopped == [ev.SandboxStopped(sandbox_id=SID, runner_id="r1", exit_code=0)]
    sandbox = given(created(), started(), ev.SandboxStopRequested(sandbox_id=SID), *stopped)
    assert domain.request_start(sandbox) == [ev.SandboxStartRequested(sandbox_id=SID)]


def test_repeated_requests_are_idempotent() -> None:
    assert domain.request_start(given(created(), started())) == []
    stopping = given(created(), started(), ev.SandboxStopRequested(sandbox_id=SID))
    assert domain.request_stop(stopping) == []
    destroying = given(created(), ev.SandboxDestroyRequested(sandbox_id=SID))
    assert domain.request_destroy(destroying) == []


@pytest.mark.parametrize("decide", [domain.request_start, domain.request_stop])
def test_a_destroying_sandbox_refuses_lifecycle_changes(decide) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidState):
        decide(given(created(), ev.SandboxDestroyRequested(sandbox_id=SID)))


def test_stop_while_creating_is_a_change_of_desired_state() -> None:
    [stop] = domain.request_stop(given(created()))
    sandbox = given(created(), stop)
    assert (sandbox.state, sandbox.desired_state) == ("stopping", "stopped")
    late_start = facts.SandboxContainerStarted(runner_id="r1", sandbox_id=SID, container_id="c")
    assert domain.observe(sandbox, late_start) == [], "the create finishing does not undo the stop"


def test_destroy_releases_the_name() -> None:
    events = domain.request_destroy(given(created(), started()))
    assert ev.SandboxNameReleased(organization_id="org", name="box", sandbox_id=SID) in events


def test_a_failure_is_an_error_state_with_its_reason() -> None:
    fact = facts.SandboxContainerFailed(runner_id="r1", sandbox_id=SID, operation="create", reason="no image")
    sandbox = given(created(), *domain.observe(given(created()), fact))
    assert (sandbox.state, sandbox.error_reason) == ("error", "no image")


def test_labels_are_replaced_whole() -> None:
    sandbox = given(created(), ev.SandboxLabelsReplaced(sandbox_id=SID, labels={"a": "b"}))
    assert sandbox.labels == {"a": "b"}
    assert domain.replace_labels(sandbox, {"a": "b"}) == []
