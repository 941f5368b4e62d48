"""Rebuilding the api's read models from zero, and proving that the fold gives the same answers.

The event log is the truth; the read models (today the `SandboxDirectory`: sandboxes, names, API keys
and placement counts per runner) are folds of its notification log. `rebuild` folds a fresh directory
through the very `catch_up` the api runs at start-up. The checks compare a rebuilt directory with
independent answers from the same log:

- `fold_stepwise`: a plain reference fold, one small page at a time in varying sizes, as a running api
  folds while events trickle in (`directory_differences` compares the two);
- `aggregate_differences`: every sandbox's own stream loaded as an aggregate (what `GET /sandbox/{id}`
  and every decision use), and every name slot;
- `answer_differences`: what a running api answers over REST (fetched by the caller, an adapter).

Every function returns a list of human-readable differences: empty means "the same answers".
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral_eventstore import EventLog

from ..domain import sandbox as domain
from ..domain.names import NameSlot, name_key
from . import listing
from .directory import ApiKeyEntry, SandboxDirectory

STEPS = (1, 7, 64, 3, 250, 2, 31)
"""Page sizes of the reference fold: many page boundaries, none aligned with the bulk fold's."""


@dataclass(frozen=True)
class Rebuilt:
    directory: SandboxDirectory
    events: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        d = self.directory
        return {
            "events": self.events,
            "position": d.position,
            "sandboxes": len(d.sandboxes),
            "live": sum(1 for s in d.sandboxes.values() if s.state != "destroyed"),
            "names": len(d.names),
            "api_keys": len(d.api_keys),
            "organizations": len(d.identity.organizations),
            "audit_entries": len(d.audit),
            "placed": {runner: count for runner, count in sorted(d.placed.items()) if count},
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds > 0 else None,
        }


async def rebuild(event_log: EventLog) -> Rebuilt:
    """Fold every read model from the first event, through the api's own start-up path."""
    directory = SandboxDirectory(event_log)
    started = time.perf_counter()
    await directory.catch_up()
    return Rebuilt(directory, directory.folded, time.perf_counter() - started)


def fold_stepwise(event_log: EventLog, until: int | None = None, steps: Sequence[int] = STEPS) -> SandboxDirectory:
    """The reference fold: decode and apply one notification at a time, reading small pages of varying
    sizes, up to notification `until` (everything when None). Synchronous: run it in a thread."""
    directory = SandboxDirectory(event_log)
    for size in itertools.cycle(steps):
        page = event_log.notifications(directory.position, size)
        if until is not None:
            page = [n for n in page if n.id <= until]
        if not page:
            return directory
        for notification in page:
            directory.apply(event_log.decode(notification))
        directory.position = page[-1].id
        directory.folded += len(page)
    raise AssertionError("unreachable")


# --- comparing -----------------------------------------------------------------------------------


def sandbox_differences(label: str, expected: domain.Sandbox | None, actual: domain.Sandbox | None) -> list[str]:
    if expected is None or actual is None:
        return [] if expected is actual else [f"{label}: {'missing' if actual is None else 'unexpected'}"]
    return [f"{label}.{field}: {getattr(expected, field)!r} != {getattr(actual, field)!r}"
            for field in expected.__struct_fields__ if getattr(expected, field) != getattr(actual, field)]


def _key(entry: ApiKeyEntry) -> tuple[Any, ...]:
    return (entry.key_id, entry.organization_id, entry.prefix, entry.revoked, entry.name, sorted(entry.permissions),
            entry.expires_at, entry.last_used_at)


def _mapping_differences(label: str, expected: Mapping[Any, Any], actual: Mapping[Any, Any]) -> list[str]:
    out = []
    for key in sorted(expected.keys() | actual.keys(), key=repr):
        if key not in actual:
            out.append(f"{label}[{key!r}]: missing (expected {expected[key]!r})")
        elif key not in expected:
            out.append(f"{label}[{key!r}]: unexpected {actual[key]!r}")
        elif expected[key] != actual[key]:
            out.append(f"{label}[{key!r}]: {expected[key]!r} != {actual[key]!r}")
    return out


def directory_differences(expected: SandboxDirectory, actual: SandboxDirectory) -> list[str]:
    """Every way two directories folded from the same log would answer differently."""
    out: list[str] = []
    if expected.position != actual.position:
        out.append(f"position: {expected.position} != {actual.position}")
    for sandbox_id in sorted(expected.sandboxes.keys() | actual.sandboxes.keys()):
        out += sandbox_differences(f"sandbox {sandbox_id}", expected.sandboxes.get(sandbox_id),
                                   actual.sandboxes.get(sandbox_id))
    out += _mapping_differences("names", expected.names, actual.names)
    out += _mapping_differences("api_keys", {h: _key(e) for h, e in expected.api_keys.items()},
                                {h: _key(e) for h, e in actual.api_keys.items()})
    out += _mapping_differences("placed", {r: n for r, n in expected.placed.items() if n},
                                {r: n for r, n in actual.placed.items() if n})
    out += _mapping_differences("organizations", {i: o for i, o in expected.identity.organizations.items()},
                                {i: o for i, o in actual.identity.organizations.items()})
    out += _mapping_differences("usage", {o: u for o, u in expected.usage.totals.items() if u.rises()},
                                {o: u for o, u in actual.usage.totals.items() if u.rises()})
    out += _mapping_differences("audit", {o: [i.event.audit_id for i in items]
                                          for o, items in expected.audit.by_organization.items() if items},
                                {o: [i.event.audit_id for i in items]
                                 for o, items in actual.audit.by_organization.items() if items})
    return out


def _fold(state: domain.Sandbox | None, event: Any) -> domain.Sandbox | None:
    return domain.evolve(state, event.payload, event.originator_version, event.timestamp)


def aggregate_differences(event_log: EventLog, directory: SandboxDirectory) -> list[str]:
    """The directory against each sandbox's own stream and each name slot (the write side's view).
    Synchronous: run it in a thread. If the log has grown since the directory's position, a stream
    that moved on is compared as of the directory's version of it."""
    grown = event_log.last_notification_id() > directory.position
    out: list[str] = []
    for sandbox_id, folded in directory.sandboxes.items():
        state: domain.Sandbox | None = None
        for event in event_log.history(uuid.UUID(sandbox_id)):
            if grown and event.originator_version > folded.version:
                break
            state = _fold(state, event)
        out += sandbox_differences(f"sandbox {sandbox_id} (its stream)", state, folded)
    held = {(s.organization_id, s.name) for s in directory.sandboxes.values()
            if s.state not in ("destroying", "destroyed") and (s.state != "error" or s.desired_state != "destroyed")}
    for organization_id, name in sorted(held | directory.names.keys()):
        slot = event_log.load(name_key(organization_id, name),
                              lambda s, e: (s or NameSlot()).apply(e.payload, e.originator_version))
        holder = slot.holder if slot is not None else None
        if holder != directory.names.get((organization_id, name)) and not grown:
            out.append(f"name {organization_id}/{name}: held by {holder!r} in its slot, "
                       f"{directory.names.get((organization_id, name))!r} in the directory")
    return out


async def check(event_log: EventLog, rebuilt: Rebuilt) -> list[str]:
    """A rebuilt directory against the reference fold and against the aggregates' own streams."""
    directory = rebuilt.directory
    reference = await asyncio.to_thread(fold_stepwise, event_log, directory.position)
    out = [f"reference fold: {d}" for d in directory_differences(reference, directory)]
    if reference.folded != rebuilt.events:
        out.append(f"events folded: {reference.folded} by the reference fold, {rebuilt.events} by the rebuild")
    out += await asyncio.to_thread(aggregate_differences, event_log, directory)
    return out


Rendered = dict[str, Any]
IGNORED_FIELDS = frozenset({"toolboxProxyUrl"})
"""Configuration of the serving api, not state."""


def expected_list(directory: SandboxDirectory, organization_id: str) -> list[domain.Sandbox]:
    """What `GET /sandbox` with no filter lists for an organization, all pages together, in order."""
    sandboxes = list(directory.sandboxes.values())
    return listing.select(sandboxes, organization_id, listing.ListQuery(limit=max(1, len(sandboxes)))).items


def answer_differences(directory: SandboxDirectory, organization_id: str, render: Callable[[domain.Sandbox], Rendered],
                       listed: Iterable[Rendered], got: Mapping[str, Rendered | None]) -> list[str]:
    """The directory against a running api's answers: `listed` is every item of `GET /sandbox` (all pages,
    in order), `got` maps sandbox ids to `GET /sandbox/{id}` (None for a 404). `render` turns a sandbox
    into its wire form."""
    out: list[str] = []

    def compare(label: str, expected: Rendered, actual: Rendered) -> None:
        for key in sorted((expected.keys() | actual.keys()) - IGNORED_FIELDS):
            if expected.get(key) != actual.get(key):
                out.append(f"{label}.{key}: {expected.get(key)!r} (rebuilt) != {actual.get(key)!r} (api)")

    listed = list(listed)
    want = expected_list(directory, organization_id)
    want_ids, got_ids = [s.id for s in want], [item.get("id") for item in listed]
    if want_ids != got_ids:
        missing, extra = set(want_ids) - set(got_ids), set(got_ids) - set(want_ids)
        out.append(f"list: {len(want_ids)} sandboxes rebuilt, {len(got_ids)} listed"
                   + (f"; not listed: {sorted(missing)}" if missing else "")
                   + (f"; listed but not rebuilt: {sorted(extra)}" if extra else "")
                   + ("; same sandboxes in another order" if not missing and not extra else ""))
    by_id = {item.get("id"): item for item in listed}
    for sandbox in want:
        if sandbox.id in by_id:
            compare(f"list item {sandbox.id}", render(sandbox), by_id[sandbox.id])
    for sandbox_id, answer in sorted(got.items(), key=lambda kv: kv[0]):
        sandbox = directory.sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.organization_id != organization_id:
            out.append(f"get {sandbox_id}: not in the rebuilt directory of organization {organization_id}")
        elif sandbox.state == "destroyed":
            if answer is not None:
                out.append(f"get {sandbox_id}: destroyed when rebuilt, but the api answers {answer.get('state')!r}")
        elif answer is None:
            out.append(f"get {sandbox_id}: {sandbox.state} when rebuilt, but the api answers 404")
        else:
            compare(f"get {sandbox_id}", render(sandbox), answer)
    return out


def organization_of(directory: SandboxDirectory, key_hash: str) -> str | None:
    entry = directory.api_keys.get(key_hash)
    return entry.organization_id if entry is not None and not entry.revoked else None
