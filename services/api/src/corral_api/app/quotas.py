"""Quota enforcement without races, in one api process or many.

`UsageView` keeps each organization's current usage, folded with the sandbox directory: what every
sandbox holds in its state (domain.quotas.held), raised to what it was last admitted for while a
resize is under way.

`QuotaGate.admit` is called by every request that would raise an organization's usage (create, start,
restore, recover, resize). It reads the version of the organization's usage ledger, catches the
directory up (so it includes every admission up to that version: each is recorded in the same
transaction as the sandbox events it admits), checks the totals, and hands the caller one more
aggregate to append in the same transaction: `OrganizationUsageAdmitted` after that version. Two
admissions that saw the same usage cannot both be recorded: the second gets a version conflict and
is decided again with the first one counted. Within one process an asyncio lock per organization
keeps admissions from conflicting with each other at all; replicas conflict and retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from corral_contracts import identity as idev
from corral_contracts import sandbox as ev
from corral_eventstore import EventLog, Recorded

from ..domain import quotas
from ..domain.identity import usage_ledger_key
from ..domain.quotas import Usage
from ..domain.sandbox import Sandbox, evolve

OPERATIONS = {ev.SandboxCreated: "create", ev.SandboxStartRequested: "start", ev.SandboxRestoreRequested: "restore",
              ev.SandboxRecoverRequested: "recover", ev.SandboxResizeRequested: "resize"}

Extra = tuple[uuid.UUID, int, list[Any]]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class UsageView:
    def __init__(self) -> None:
        self.totals: defaultdict[str, Usage] = defaultdict(Usage)
        self._held: dict[str, tuple[str, Usage]] = {}
        """sandbox id -> (organization, what it holds now)."""
        self._admitted: dict[str, Usage] = {}
        """sandbox id -> the size of its last admission (a resize raises it before the runner does)."""
        self._sandboxes: dict[str, Sandbox] = {}

    def attach(self, sandboxes: dict[str, Sandbox]) -> None:
        self._sandboxes = sandboxes

    def holds(self, sandbox: Sandbox) -> Usage:
        size = self._admitted.get(sandbox.id)
        cpu, memory = sandbox.cpu, sandbox.memory
        if size is not None and sandbox.state == "resizing":
            cpu, memory = max(cpu, size.cpu), max(memory, size.memory)
        return quotas.held(sandbox.state, cpu, memory, sandbox.disk, sandbox.resume_state)

    def _recount(self, sandbox: Sandbox) -> None:
        org, before = self._held.get(sandbox.id, (sandbox.organization_id, Usage()))
        now = self.holds(sandbox)
        if now != before:
            self.totals[org] = self.totals[org] - before + now
        if sandbox.state == "destroyed":
            self._held.pop(sandbox.id, None)
            self._admitted.pop(sandbox.id, None)
        else:
            self._held[sandbox.id] = (org, now)

    def changed(self, before: Sandbox | None, after: Sandbox) -> None:
        """Directory listener: every folded sandbox change."""
        self._recount(after)

    def apply(self, event: Recorded) -> bool:
        payload = event.payload
        if not isinstance(payload, idev.OrganizationUsageAdmitted):
            return False
        self._admitted[payload.sandbox_id] = Usage(payload.cpu, payload.memory, payload.disk)
        sandbox = self._sandboxes.get(payload.sandbox_id)
        if sandbox is not None:
            self._recount(sandbox)
        return True


def _after(before: Sandbox | None, events: Iterable[Any]) -> Sandbox | None:
    state = before
    version = before.version if before else 0
    for event in events:
        version += 1
        state = evolve(state, event, version, before.updated_at if before else _EPOCH)
    return state


class QuotaGate:
    def __init__(self, *, event_log: EventLog, view: UsageView, quota: Callable[[str], quotas.Quota],
                 catch_up: Callable[[], Awaitable[Any]]):
        self._log = event_log
        self._view = view
        self._quota = quota
        self._catch_up = catch_up
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def quota(self, organization_id: str) -> quotas.Quota:
        return self._quota(organization_id)

    def check_size(self, organization_id: str, cpu: int, memory: int, disk: int | None) -> None:
        quotas.check_sandbox_size(self._quota(organization_id), cpu, memory, disk)

    async def admit(self, organization_id: str, before: Sandbox | None, events: list[Any],
                    append: Callable[[list[Extra]], Awaitable[Any]]) -> Any:
        """Check that recording `events` (for one sandbox, now `before`) keeps the organization within its
        quota, then call `append(extra)` with the ledger entry to record in the same transaction (none
        when usage does not rise). Raises `QuotaExceeded`, or `ConcurrencyConflict` from `append`."""
        after = _after(before, events)
        operation = next((OPERATIONS[type(e)] for e in events if type(e) in OPERATIONS), None)
        if after is None or operation is None:
            return await append([])
        resize = next((e for e in events if isinstance(e, ev.SandboxResizeRequested)), None)
        if resize is not None and before is not None:
            size = Usage(resize.cpu, resize.memory, before.disk)
            grown = quotas.held(before.state, size.cpu, size.memory, size.disk, before.resume_state)
            rise = grown - self._view.holds(before)
        else:
            size = Usage(after.cpu, after.memory, after.disk)
            rise = self._view.holds(after) - (self._view.holds(before) if before else Usage())
        if not rise.rises():
            return await append([])
        async with self._locks[organization_id]:
            ledger = usage_ledger_key(organization_id)
            version = await asyncio.to_thread(self._log.version, ledger)
            await self._catch_up()
            quotas.check_admission(self._quota(organization_id), self._view.totals[organization_id], rise)
            admitted = idev.OrganizationUsageAdmitted(organization_id=organization_id, sandbox_id=after.id,
                                                      operation=operation, cpu=size.cpu, memory=size.memory,
                                                      disk=size.disk)
            return await append([(ledger, version, [admitted])])


