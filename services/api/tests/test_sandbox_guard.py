"""Network policy and OOM kills on the Sandbox aggregate: validation, decisions, idempotent recording."""

from __future__ import annotations

import pytest

from corral_api.app.process_manager import command_for, create_command
from corral_api.domain import guard
from corral_api.domain.errors import InvalidRequest, InvalidState
from corral_contracts import guard as gd
from corral_contracts import sandbox as ev

from test_sandbox_domain import SID, created, given, started


def test_allow_lists_are_normalized_and_bounded() -> None:
    assert guard.parse_allow_list(" 10.1.2.3/8, 1.2.3.4 ,10.0.0.0/8") == ["10.0.0.0/8", "1.2.3.4/32"]
    assert guard.parse_allow_list("") == []
    for bad in ("10.0.0.0/33", "example.com", "::1/128", "1.2.3.4,", ",".join(f"10.{i}.0.0/16" for i in range(11))):
        with pytest.raises(InvalidRequest):
            guard.parse_allow_list(bad)


def test_a_change_records_the_whole_policy_with_a_new_revision_and_becomes_a_runner_command() -> None:
    sandbox = given(created(), started())
    [changed] = guard.request_network_settings(sandbox, None, ["10.0.0.0/8"])
    assert changed == gd.SandboxNetworkSettingsChanged(sandbox_id=SID, revision=1, network_block_all=False,
                                                       network_allow_list=["10.0.0.0/8"])
    after = given(created(), started(), changed)
    assert guard.network_pending(after) and after.network_allow_list == ["10.0.0.0/8"]
    command = command_for(changed, after)
    assert command == gd.UpdateSandboxNetwork(sandbox_id=SID, revision=1, network_block_all=False,
                                              network_allow_list=["10.0.0.0/8"])
    assert create_command(after).network_allow_list == ["10.0.0.0/8"]  # a restore or re-create keeps it
    assert guard.request_network_settings(after, False, ["10.0.0.0/8"]) == []  # already so


def test_only_a_newer_confirmation_is_recorded() -> None:
    changed = gd.SandboxNetworkSettingsChanged(sandbox_id=SID, revision=1, network_block_all=True)
    sandbox = given(created(), started(), changed)
    fact = gd.SandboxContainerNetworkApplied(runner_id="r1", sandbox_id=SID, revision=1)
    [applied] = guard.observe_network_applied(sandbox, fact)
    done = given(created(), started(), changed, applied)
    assert not guard.network_pending(done) and guard.observe_network_applied(done, fact) == []


def test_a_destroyed_sandbox_takes_no_policy() -> None:
    sandbox = given(created(), started(), ev.SandboxDestroyRequested(sandbox_id=SID))
    with pytest.raises(InvalidState):
        guard.request_network_settings(sandbox, True, None)


def test_oom_kills_count_once_per_run_whatever_the_repeats() -> None:
    sandbox = given(created(), started())
    fact = gd.SandboxContainerOomKilled(runner_id="r1", sandbox_id=SID, run="2026-01-01T00:00:01Z", oom_kills=2)
    [first] = guard.observe_oom(sandbox, fact)
    sandbox = given(created(), started(), first)
    assert (sandbox.oom_kills, sandbox.oom_run_kills, first.kills) == (2, 2, 2) and sandbox.last_oom_at
    assert guard.observe_oom(sandbox, fact) == []  # a repeated report adds nothing
    [more] = guard.observe_oom(sandbox, gd.SandboxContainerOomKilled(runner_id="r1", sandbox_id=SID,
                                                                     run=fact.run, oom_kills=3))
    assert more.kills == 1
    later = gd.SandboxContainerOomKilled(runner_id="r1", sandbox_id=SID, run="2026-01-01T00:05:00Z", oom_kills=1)
    [next_run] = guard.observe_oom(sandbox, later)
    sandbox = given(created(), started(), first, next_run)
    assert sandbox.oom_kills == 3
    assert guard.observe_oom(sandbox, fact) == []  # an earlier run's late report
