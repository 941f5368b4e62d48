"""The mapping from platform events to webhook events: given events, then the notices, their payloads
(Daytona's fields, `event`, `timestamp`, `cause`) and what the store keeps. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from corral_contracts import sandbox as sbev
from corral_contracts import snapshot as snev
from corral_contracts import volume as vev
from corral_contracts import webhooks as wh
from corral_webhooks.domain.catalog import SOURCE_OF, Notice, Tracked, change, example

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
SID = "11111111-1111-4111-8111-111111111111"
USER = {"Corral-Actor": "crl_abcd"}
RUNNER = {"Corral-Actor": "runner:r1", "Corral-Causation-Id": "r1:fact"}
SUPERVISOR = {"Corral-Actor": "supervisor"}


def run(events: list[tuple[Any, dict[str, str]]]) -> tuple[list[Notice], dict[tuple[str, str], Tracked], list[Any]]:
    """Fold events as the webhooks service does; returns every notice, the resources and what was kept."""
    resources: dict[tuple[str, str], Tracked] = {}
    notices: list[Notice] = []
    kept: list[Any] = []
    for i, (event, meta) in enumerate(events):
        source = SOURCE_OF[type(event)]
        key = (source.kind, source.key(event))
        result = change(source, resources.get(key), event, T0 + timedelta(seconds=i), meta)
        if result is None:
            continue
        resources[key] = result.after
        notices += result.notices
        if result.kept is not None:
            kept.append(result.kept)
    return notices, resources, kept


def created(**extra: Any) -> sbev.SandboxCreated:
    return sbev.SandboxCreated(sandbox_id=SID, organization_id="org", name="box", runner_id="r1", image="img",
                               snapshot="snap", user="daytona", env={"API_TOKEN": "secret"}, labels={"a": "b"},
                               preview_token="p" * 32, **extra)


def transitions(notices: list[Notice]) -> list[tuple[str, str]]:
    return [(n.payload["oldState"], n.payload["newState"]) for n in notices if n.event_type == "sandbox.state.updated"]


def test_a_sandbox_lifecycle_gives_created_then_every_state_change_with_daytona_fields() -> None:
    notices, _, _ = run([
        (created(), USER),
        (sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxLabelsReplaced(sandbox_id=SID, labels={}), USER),
        (sbev.SandboxStopRequested(sandbox_id=SID), USER),
        (sbev.SandboxStopped(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxDestroyRequested(sandbox_id=SID), USER),
        (sbev.SandboxDestroyed(sandbox_id=SID, runner_id="r1"), RUNNER),
    ])
    assert [n.event_type for n in notices] == ["sandbox.created"] + ["sandbox.state.updated"] * 5
    assert transitions(notices) == [("creating", "started"), ("started", "stopping"), ("stopping", "stopped"),
                                    ("stopped", "destroying"), ("destroying", "destroyed")]
    first = notices[0].payload
    assert first == {"event": "sandbox.created", "timestamp": "2026-03-01T12:00:00.123Z", "id": SID,
                     "organizationId": "org", "state": "creating", "sandboxClass": "container",
                     "createdAt": "2026-03-01T12:00:00.123Z",
                     "cause": {"kind": "user", "reason": "created", "actor": "crl_abcd"}}
    started = notices[1].payload
    assert list(started) == ["event", "timestamp", "id", "organizationId", "oldState", "newState", "updatedAt",
                             "cause"]
    assert started["updatedAt"] == started["timestamp"] == "2026-03-01T12:00:01.123Z"
    assert all(n.organization_id == "org" for n in notices)


def test_the_cause_says_user_or_timer_even_when_the_runner_reports_the_change() -> None:
    notices, _, _ = run([
        (created(), USER),
        (sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxStopRequested(sandbox_id=SID, reason="auto-stop"), SUPERVISOR),
        (sbev.SandboxStopped(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxStartRequested(sandbox_id=SID), USER),
        (sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxStopped(sandbox_id=SID, runner_id="r1", exit_code=137), RUNNER),
        (sbev.SandboxFailed(sandbox_id=SID, reason="starting did not finish within 60s", recoverable=True),
         SUPERVISOR),
    ])
    causes = [n.payload["cause"] for n in notices[1:]]
    assert causes[0] == {"kind": "user", "reason": "created", "actor": "crl_abcd", "observedBy": "runner:r1"}
    assert causes[1] == {"kind": "timer", "reason": "auto-stop", "actor": "supervisor"}
    assert causes[2] == {"kind": "timer", "reason": "auto-stop", "actor": "supervisor", "observedBy": "runner:r1"}
    assert causes[3] == {"kind": "user", "reason": "user", "actor": "crl_abcd"}
    assert causes[4]["kind"] == "user" and causes[4]["observedBy"] == "runner:r1"
    assert causes[5] == {"kind": "platform", "reason": "stopped", "actor": "runner:r1"}, \
        "a container that stopped by itself is not the user's doing"
    assert causes[6] == {"kind": "platform", "reason": "starting did not finish within 60s", "actor": "supervisor"}
    assert notices[-1].payload["newState"] == "error"
    assert notices[-1].payload["errorReason"] == "starting did not finish within 60s"


def test_the_store_keeps_no_secret_and_nothing_that_changes_no_state() -> None:
    _, _, kept = run([
        (created(), USER),
        (sbev.SandboxSigningKeyRotated(sandbox_id=SID, signing_key="very-secret"), USER),
        (sbev.SandboxLabelsReplaced(sandbox_id=SID, labels={"x": "y"}), USER),
        (sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER),
    ])
    assert [type(k).__name__ for k in kept] == ["SandboxCreated", "SandboxStarted"]
    assert kept[0].env == {} and kept[0].labels == {} and kept[0].preview_token == ""
    assert "secret" not in repr(kept) and "very-secret" not in repr(kept)


def test_a_resize_returns_to_the_state_it_left_as_the_api_folds_it() -> None:
    notices, resources, _ = run([
        (created(), USER),
        (sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxStopRequested(sandbox_id=SID), USER),
        (sbev.SandboxStopped(sandbox_id=SID, runner_id="r1"), RUNNER),
        (sbev.SandboxResizeRequested(sandbox_id=SID, cpu=2, memory=2), USER),
        (sbev.SandboxResized(sandbox_id=SID, runner_id="r1", cpu=2, memory=2), RUNNER),
    ])
    assert transitions(notices)[-2:] == [("stopped", "resizing"), ("resizing", "stopped")]
    assert resources[("sandbox", SID)].state == "stopped"


def test_events_of_an_unknown_sandbox_make_nothing() -> None:
    notices, resources, kept = run([(sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER)])
    assert notices == [] and resources == {} and kept == []


SNAP = "22222222-2222-4222-8222-222222222222"
VOL = "33333333-3333-4333-8333-333333333333"
BUILDER = {"Corral-Actor": "snapshot-manager", "Corral-Causation-Id": "sm:1"}


def test_snapshots_give_created_state_updated_and_removed() -> None:
    notices, _, kept = run([
        (snev.SnapshotCreated(snapshot_id=SNAP, organization_id="org", name="py", ref="corral-snapshot:x",
                              source="dockerfile", dockerfile="FROM x\n" * 100), USER),
        (snev.SnapshotBuildStarted(snapshot_id=SNAP, state="building"), BUILDER),
        (snev.SnapshotBuilt(snapshot_id=SNAP, ref="corral-snapshot:x"), BUILDER),
        (snev.SnapshotRemoveRequested(snapshot_id=SNAP), USER),
        (snev.SnapshotRemoved(snapshot_id=SNAP), BUILDER),
    ])
    assert [n.event_type for n in notices] == ["snapshot.created", "snapshot.state.updated",
                                               "snapshot.state.updated", "snapshot.state.updated",
                                               "snapshot.removed"]
    assert notices[0].payload | {"cause": None} == {
        "event": "snapshot.created", "timestamp": "2026-03-01T12:00:00.123Z", "id": SNAP, "name": "py",
        "organizationId": "org", "state": "pending", "createdAt": "2026-03-01T12:00:00.123Z", "cause": None}
    assert [(n.payload["oldState"], n.payload["newState"]) for n in notices[1:4]] == [
        ("pending", "building"), ("building", "active"), ("active", "removing")]
    assert notices[2].payload["cause"] == {"kind": "user", "reason": "created", "actor": "crl_abcd",
                                           "observedBy": "snapshot-manager"}
    assert set(notices[4].payload) == {"event", "timestamp", "id", "name", "organizationId", "removedAt", "cause"}
    assert kept[0].dockerfile == "", "the store keeps no bulky build input"


def test_volumes_give_created_and_state_updated() -> None:
    notices, _, _ = run([
        (vev.VolumeCreated(volume_id=VOL, organization_id="org", name="data"), USER),
        (vev.VolumeReady(volume_id=VOL), BUILDER),
        (vev.VolumeDeleteRequested(volume_id=VOL), USER),
        (vev.VolumeDeleted(volume_id=VOL), BUILDER),
    ])
    assert [n.event_type for n in notices] == ["volume.created"] + ["volume.state.updated"] * 3
    assert notices[0].payload["state"] == "pending_create" and notices[0].payload["name"] == "data"
    assert [(n.payload["oldState"], n.payload["newState"]) for n in notices[1:]] == [
        ("pending_create", "ready"), ("ready", "pending_delete"), ("pending_delete", "deleted")]


def test_every_catalogued_type_is_made_by_the_table_and_has_an_example() -> None:
    made = set()
    for events in (
        [(created(), USER), (sbev.SandboxStarted(sandbox_id=SID, runner_id="r1"), RUNNER)],
        [(snev.SnapshotCreated(snapshot_id=SNAP, organization_id="o", name="n", ref="r", source="image"), USER),
         (snev.SnapshotBuilt(snapshot_id=SNAP, ref="r"), BUILDER), (snev.SnapshotRemoved(snapshot_id=SNAP), BUILDER)],
        [(vev.VolumeCreated(volume_id=VOL, organization_id="o", name="n"), USER), (vev.VolumeReady(volume_id=VOL), USER)],
    ):
        made |= {n.event_type for n in run(events)[0]}
    assert made == set(wh.EVENT_TYPES)
    for event_type in [*wh.EVENT_TYPES, wh.TEST_EVENT_TYPE]:
        payload = example(event_type, "org", T0)
        assert payload["event"] == event_type and payload["test"] is True and payload["timestamp"].endswith("Z")
