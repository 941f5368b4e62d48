"""The WebhookEndpoint aggregate: given events, when a decision, then events. No I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from corral_api.domain import webhook_endpoint as domain
from corral_api.domain.errors import InvalidRequest, InvalidState
from corral_contracts import webhooks as wh

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
EID = "44444444-4444-4444-8444-444444444444"


def given(*events: object) -> domain.WebhookEndpoint:
    state = None
    for version, event in enumerate(events, start=1):
        state = domain.evolve(state, event, version, NOW)
    assert state is not None
    return state


def create(**kw: object) -> list[object]:
    fields: dict[str, object] = {"url": "https://example.com/hook", "secret": "whsec_a", **kw}
    return domain.create(EID, "org", **fields)  # type: ignore[arg-type]


def test_creation_validates_url_types_and_description() -> None:
    endpoint = given(*create(event_types=["sandbox.created", "sandbox.created"]))
    assert endpoint.event_types == ["sandbox.created"] and endpoint.enabled and endpoint.version == 1
    for bad in ({"url": "ftp://x/"}, {"event_types": ["sandbox.nope"]}, {"description": "x" * 513}):
        with pytest.raises(InvalidRequest):
            create(**bad)


def test_updates_record_only_what_changes_and_enabling_clears_an_automatic_disable() -> None:
    endpoint = given(*create())
    assert domain.update(endpoint, url="https://example.com/hook", enabled=True) == []
    disabled = given(*create(), *domain.disable(endpoint, judged_version=1, reason="down", failing_since=NOW))
    assert not disabled.enabled and disabled.disabled_reason == "down" and disabled.failing_since == NOW
    events = domain.update(disabled, enabled=True)
    assert events == [wh.WebhookEndpointUpdated(endpoint_id=EID, organization_id="org", enabled=True)]
    again = given(*create(), *domain.disable(endpoint, judged_version=1, reason="down", failing_since=NOW), *events)
    assert again.enabled and again.disabled_reason is None and again.disabled_at is None


def test_disabling_is_idempotent_and_leaves_an_endpoint_changed_since_it_was_judged() -> None:
    endpoint = given(*create())
    first = domain.disable(endpoint, judged_version=1, reason="down", failing_since=NOW)
    assert len(first) == 1
    assert domain.disable(given(*create(), *first), judged_version=2, reason="down", failing_since=NOW) == []
    moved = given(*create(), wh.WebhookEndpointUpdated(endpoint_id=EID, organization_id="org", url="https://b/"))
    assert domain.disable(moved, judged_version=1, reason="down", failing_since=NOW) == []


def test_rotation_replaces_the_secret_and_nothing_changes_a_deleted_endpoint() -> None:
    endpoint = given(*create())
    rotated = given(*create(), *domain.rotate_secret(endpoint, "whsec_b", NOW))
    assert rotated.secret == "whsec_b" and rotated.previous_secret == "whsec_a"
    assert rotated.signing_secrets(NOW) == ["whsec_b", "whsec_a"], "the previous secret signs during its grace"
    assert rotated.signing_secrets(NOW + timedelta(hours=24)) == ["whsec_b"]
    at_once = given(*create(), *domain.rotate_secret(endpoint, "whsec_c", NOW, keep_previous=0))
    assert at_once.signing_secrets(NOW) == ["whsec_c"] and at_once.previous_secret == ""
    with pytest.raises(InvalidRequest):
        domain.rotate_secret(endpoint, "whsec_d", NOW, keep_previous=-1)
    gone = given(*create(), *domain.delete(endpoint))
    assert gone.deleted and not gone.enabled
    for decide in (lambda e: domain.update(e, enabled=True), lambda e: domain.rotate_secret(e, "x", NOW), domain.delete):
        with pytest.raises(InvalidState):
            decide(gone)
