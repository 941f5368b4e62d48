"""The sandbox's signing key (signed file URLs): issued once, replaced on rotation. No I/O."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from corral_api.domain import sandbox as domain
from corral_api.domain.errors import InvalidState
from corral_contracts import sandbox as ev

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SID = "11111111-1111-4111-8111-111111111111"


def given(*events: object) -> domain.Sandbox:
    state = None
    for version, event in enumerate(events, start=1):
        state = domain.evolve(state, event, version, NOW)
    assert state is not None
    return state


def created() -> ev.SandboxCreated:
    return ev.SandboxCreated(sandbox_id=SID, organization_id="org", name="box", runner_id="r1", image="img",
                             snapshot="snap", user="daytona")


def test_the_key_is_issued_on_first_request_then_kept() -> None:
    sandbox = given(created())
    assert sandbox.signing_key == ""
    issued = domain.issue_signing_key(sandbox, "k1")
    assert issued == [ev.SandboxSigningKeyRotated(sandbox_id=SID, signing_key="k1")]
    after = given(created(), *issued)
    assert after.signing_key == "k1" and after.version == 2
    assert domain.issue_signing_key(after, "k2") == []


def test_rotation_always_replaces_the_key_but_not_for_a_destroyed_sandbox() -> None:
    sandbox = given(created(), ev.SandboxSigningKeyRotated(sandbox_id=SID, signing_key="k1"))
    assert domain.rotate_signing_key(sandbox, "k2") == [ev.SandboxSigningKeyRotated(sandbox_id=SID, signing_key="k2")]
    gone = given(created(), ev.SandboxDestroyRequested(sandbox_id=SID))
    with pytest.raises(InvalidState):
        domain.rotate_signing_key(gone, "k3")
