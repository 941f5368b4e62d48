"""From platform events to webhook events: the one table to extend when the platform grows.

Each `Source` follows one kind of resource (sandbox, snapshot, volume) through its recorded events: it
folds the resource's state (the sandbox through the api's own state machine, snapshots and volumes through
their contracts' `state_after`), says which webhook events a change makes, with which payload (the fields
of Daytona's webhooks, plus `event`, an ISO `timestamp` and the `cause`), and what of an event the
webhooks service keeps in its store to fold the state again after a restart (never secrets: a sandbox's
environment and tokens are left out, signing keys are not kept at all).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec

from corral_api.domain import sandbox as sandbox_domain
from corral_contracts import sandbox as sbev
from corral_contracts import snapshot as snev
from corral_contracts import volume as vev
from corral_contracts import webhooks as wh

from .causes import Cause, cause_of


class Tracked(msgspec.Struct, frozen=True, kw_only=True):
    """A resource as the webhooks service follows it."""

    kind: str
    id: str
    organization_id: str
    state: str
    created_at: datetime
    name: str = ""
    detail: Any = None
    """The sandbox as the api folds it (its state machine needs all of it)."""
    request: Cause | None = None
    """The cause of the last change asked by a user or a timer: what a runner's report completes."""
    store_version: int = 0
    """Version of the resource's copies in the webhooks store."""


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook event to deliver to every matching endpoint of the organization."""

    event_type: str
    organization_id: str
    payload: dict[str, Any]


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as Daytona's payloads (JavaScript's `toISOString`)."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload(event_type: str, at: datetime, cause: Cause, **fields: Any) -> dict[str, Any]:
    return {"event": event_type, "timestamp": iso(at), **fields, "cause": cause.wire()}


@dataclass(frozen=True)
class Source:
    kind: str
    events: tuple[type, ...]
    """The contract events of this kind (their resource id: `key`)."""
    key: Callable[[Any], str]
    advance: Callable[[Tracked | None, Any, datetime, Cause], Tracked | None]
    """The resource after an event; None while it does not exist (events before its creation)."""
    notices: Callable[[Tracked | None, Tracked, Any, datetime, Cause], list[Notice]]
    keep: Callable[[Tracked | None, Tracked, Any], Any | None]
    """What to keep of an event in the store (None: nothing, it changes no state)."""
    settled: Callable[[Tracked], bool]
    """The resource is where it was asked to be: a report reaching this completes the request."""


# --- sandboxes ------------------------------------------------------------------------------------


def _advance_sandbox(before: Tracked | None, event: Any, at: datetime, cause: Cause) -> Tracked | None:
    detail = sandbox_domain.evolve(before.detail if before else None, event, 0, at)
    if detail is None:
        return None
    if before is None:
        return Tracked(kind="sandbox", id=detail.id, organization_id=detail.organization_id, state=detail.state,
                       created_at=at, name=detail.name, detail=detail, request=cause if cause.asked else None)
    return msgspec.structs.replace(before, state=detail.state, detail=detail,
                                   request=cause if cause.asked else before.request)


def _sandbox_notices(before: Tracked | None, after: Tracked, event: Any, at: datetime, cause: Cause) -> list[Notice]:
    if isinstance(event, sbev.SandboxCreated):
        return [Notice(event_type="sandbox.created", organization_id=after.organization_id, payload=_payload(
            "sandbox.created", at, cause, id=after.id, organizationId=after.organization_id, state=after.state,
            sandboxClass="container", createdAt=iso(at)))]
    if before is None or before.state == after.state:
        return []
    extra = {"errorReason": after.detail.error_reason} if after.state == "error" else {}
    return [Notice(event_type="sandbox.state.updated", organization_id=after.organization_id, payload=_payload(
        "sandbox.state.updated", at, cause, id=after.id, organizationId=after.organization_id,
        oldState=before.state, newState=after.state, updatedAt=iso(at), **extra))]


SECRET_FIELDS = {"env": {}, "labels": {}, "preview_token": ""}
"""Fields of `SandboxCreated` the webhooks store never keeps (the state machine does not need them)."""


def _keep_sandbox(before: Tracked | None, after: Tracked, event: Any) -> Any | None:
    if isinstance(event, sbev.SandboxCreated):
        return msgspec.structs.replace(event, **{k: v for k, v in SECRET_FIELDS.items()
                                                 if k in event.__struct_fields__})
    if isinstance(event, sbev.SandboxSigningKeyRotated) or before is None or before.state == after.state:
        return None
    return event


# --- snapshots and volumes (a state per event, from their contracts) ---------------------------------


def _advance_named(kind: str, created: type, state_after: Callable[[Any], str | None]) -> Callable[..., Tracked | None]:
    def advance(before: Tracked | None, event: Any, at: datetime, cause: Cause) -> Tracked | None:
        if isinstance(event, created):
            return Tracked(kind=kind, id=_id(event), organization_id=event.organization_id, name=event.name,
                           state=state_after(event) or "", created_at=at, request=cause if cause.asked else None)
        if before is None:
            return None
        state = state_after(event)
        return msgspec.structs.replace(before, state=state or before.state,
                                       request=cause if cause.asked else before.request)
    return advance


def _named_notices(kind: str, created: type, removed: type | None) -> Callable[..., list[Notice]]:
    def notices(before: Tracked | None, after: Tracked, event: Any, at: datetime, cause: Cause) -> list[Notice]:
        common = {"id": after.id, "name": after.name, "organizationId": after.organization_id}
        if isinstance(event, created):
            kind_type = f"{kind}.created"
            return [Notice(event_type=kind_type, organization_id=after.organization_id, payload=_payload(
                kind_type, at, cause, **common, state=after.state, createdAt=iso(at)))]
        if removed is not None and isinstance(event, removed):
            kind_type = f"{kind}.removed"
            return [Notice(event_type=kind_type, organization_id=after.organization_id, payload=_payload(
                kind_type, at, cause, **common, removedAt=iso(at)))]
        if before is None or before.state == after.state:
            return []
        kind_type = f"{kind}.state.updated"
        return [Notice(event_type=kind_type, organization_id=after.organization_id, payload=_payload(
            kind_type, at, cause, **common, oldState=before.state, newState=after.state, updatedAt=iso(at)))]
    return notices


SNAPSHOT_BULKY = {"dockerfile": "", "context_hashes": []}


def _keep_named(created: type, bulky: dict[str, Any]) -> Callable[..., Any | None]:
    def keep(before: Tracked | None, after: Tracked, event: Any) -> Any | None:
        if isinstance(event, created):
            return msgspec.structs.replace(event, **{k: v for k, v in bulky.items() if k in event.__struct_fields__})
        if before is None or before.state == after.state:
            return None
        return event
    return keep


def _id(event: Any) -> str:
    return str(getattr(event, "snapshot_id", None) or getattr(event, "volume_id"))


def _without_names(union: Any, *names: type) -> tuple[type, ...]:
    return tuple(t for t in typing.get_args(union) if t not in names)


SOURCES: tuple[Source, ...] = (
    Source("sandbox", _without_names(sbev.SandboxEvent, sbev.SandboxNameClaimed, sbev.SandboxNameReleased),
           key=lambda e: e.sandbox_id, advance=_advance_sandbox, notices=_sandbox_notices, keep=_keep_sandbox,
           settled=lambda t: bool(t.state == t.detail.desired_state)),
    Source("snapshot", _without_names(snev.SnapshotEvent, snev.SnapshotNameClaimed, snev.SnapshotNameReleased),
           key=_id, advance=_advance_named("snapshot", snev.SnapshotCreated, snev.state_after),
           notices=_named_notices("snapshot", snev.SnapshotCreated, snev.SnapshotRemoved),
           keep=_keep_named(snev.SnapshotCreated, SNAPSHOT_BULKY),
           settled=lambda t: t.state in ("active", "inactive", "removed")),
    Source("volume", _without_names(vev.VolumeEvent, vev.VolumeNameClaimed, vev.VolumeNameReleased),
           key=_id, advance=_advance_named("volume", vev.VolumeCreated, vev.state_after),
           notices=_named_notices("volume", vev.VolumeCreated, None), keep=_keep_named(vev.VolumeCreated, {}),
           settled=lambda t: t.state in ("ready", "deleted")),
)

SOURCE_OF: dict[type, Source] = {event: source for source in SOURCES for event in source.events}
"""Contract event type -> the source that follows it."""

AGGREGATES = frozenset(["webhook_endpoint", *(s.kind for s in SOURCES)])
"""The `evt.<aggregate>.*` subjects the webhooks service reads; it skips everything else at once."""


class Change(msgspec.Struct, frozen=True, kw_only=True):
    before: Tracked | None
    after: Tracked
    kept: Any | None
    notices: list[Notice]


def change(source: Source, before: Tracked | None, event: Any, at: datetime, meta: dict[str, str]) -> Change | None:
    """What `event` does to the resource it belongs to (None: nothing, e.g. an event before its creation)."""
    cause = cause_of(event, meta)
    after = source.advance(before, event, at, cause)
    if after is None:
        return None
    if cause.observed and after.request is not None and after.state not in FAILED:
        cause = cause.completing(after.request)  # on its way to, or where, it was asked to be
        if source.settled(after):
            after = msgspec.structs.replace(after, request=None)
    return Change(before=before, after=after, kept=source.keep(before, after, event),
                  notices=source.notices(before, after, event, at, cause))


FAILED = frozenset({"error", "build_failed"})


def example(event_type: str, organization_id: str, at: datetime) -> dict[str, Any]:
    """A test payload of a type (`POST …/test`), marked `"test": true`."""
    cause = Cause(kind="user", reason="test", actor="")
    ids = {"id": "00000000-0000-4000-8000-000000000000", "organizationId": organization_id}
    named = {**ids, "name": "example"}
    fields: dict[str, dict[str, Any]] = {
        "sandbox.created": {**ids, "state": "creating", "sandboxClass": "container", "createdAt": iso(at)},
        "sandbox.state.updated": {**ids, "oldState": "started", "newState": "stopped", "updatedAt": iso(at)},
        "snapshot.created": {**named, "state": "pending", "createdAt": iso(at)},
        "snapshot.state.updated": {**named, "oldState": "pending", "newState": "active", "updatedAt": iso(at)},
        "snapshot.removed": {**named, "removedAt": iso(at)},
        "volume.created": {**named, "state": "pending_create", "createdAt": iso(at)},
        "volume.state.updated": {**named, "oldState": "pending_create", "newState": "ready", "updatedAt": iso(at)},
        wh.TEST_EVENT_TYPE: {"organizationId": organization_id, "message": "A test event from Corral"},
    }
    return {**_payload(event_type, at, cause, **fields[event_type]), "test": True}
