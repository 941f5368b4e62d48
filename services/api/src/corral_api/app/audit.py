"""The audit trail: its writer (group commit into the event log) and its read model.

The writer is awaited by the request that is audited, so an answered mutating call has its audit
event recorded; concurrent requests share one transaction (a batch appends one single-event aggregate
per entry), so auditing costs a request one small write at most, usually less.

The read model (`AuditTrail`) is folded with the sandbox directory, so `corral replay` rebuilds it
from zero like every other view. It keeps only what retention allows: entries older than the
retention are dropped from it and never served. The event log itself is append-only and keeps them
(see README: retention is about what the platform serves, not an erasure of the log).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from corral_contracts.audit import AuditRecorded
from corral_eventstore import EventLog, Recorded

from ..domain import audit as rules
from ..domain.audit import AuditQuery

log = logging.getLogger(__name__)

ALL = "all"
"""`organizationId=all`: an operator's view of every organization, and of calls by refused keys."""


class AuditItem(msgspec.Struct, frozen=True):
    seq: int
    """Position among all audit events of the log (the same in every replica folding the same log)."""
    at: datetime
    event: AuditRecorded


class AuditPage(msgspec.Struct, frozen=True):
    items: list[AuditItem]
    total: int
    page: int
    total_pages: int
    next_token: str | None


class AuditTrail:
    def __init__(self, retention: timedelta | None = None, clock: Callable[[], datetime] | None = None):
        self.retention = retention
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.by_organization: dict[str, deque[AuditItem]] = {}
        self.seq = 0
        """Audit events folded so far (kept ones and those past retention)."""

    def __len__(self) -> int:
        return sum(len(items) for items in self.by_organization.values())

    def _cutoff(self) -> datetime | None:
        return self._clock() - self.retention if self.retention is not None else None

    def apply(self, event: Recorded) -> bool:
        payload = event.payload
        if not isinstance(payload, AuditRecorded):
            return False
        self.seq += 1
        cutoff = self._cutoff()
        if cutoff is not None and event.timestamp < cutoff:
            return True
        items = self.by_organization.setdefault(payload.organization_id, deque())
        items.append(AuditItem(self.seq, event.timestamp, payload))
        if cutoff is not None:
            self._prune(items, cutoff)
        return True

    @staticmethod
    def _prune(items: deque[AuditItem], cutoff: datetime) -> None:
        while items and items[0].at < cutoff:
            items.popleft()

    def prune(self) -> None:
        cutoff = self._cutoff()
        if cutoff is not None:
            for items in self.by_organization.values():
                self._prune(items, cutoff)

    def _newest_first(self, organization_id: str) -> Iterator[AuditItem]:
        if organization_id == ALL:
            merged = [item for items in self.by_organization.values() for item in items]
            yield from sorted(merged, key=lambda i: i.seq, reverse=True)
        else:
            yield from reversed(self.by_organization.get(organization_id, ()))

    def query(self, organization_id: str, q: AuditQuery) -> AuditPage:
        """One page of an organization's trail (`ALL`: every organization), newest first."""
        self.prune()
        cutoff = self._cutoff()
        after = rules.decode_token(q.next_token, q) if q.next_token else None
        matching = [item for item in self._newest_first(organization_id)
                    if _matches(item, q) and (cutoff is None or item.at >= cutoff)]
        if after is not None:
            start = next((i for i, item in enumerate(matching) if item.seq < after), len(matching))
        else:
            start = (q.page - 1) * q.limit
        items = matching[start:start + q.limit]
        more = start + q.limit < len(matching)
        return AuditPage(items=items, total=len(matching), page=q.page,
                         total_pages=max(1, math.ceil(len(matching) / q.limit)),
                         next_token=rules.encode_token(items[-1].seq, q) if items and more else None)


def _matches(item: AuditItem, q: AuditQuery) -> bool:
    e = item.event
    return ((q.since is None or item.at >= q.since) and (q.until is None or item.at <= q.until)
            and (q.action is None or e.action == q.action) and (q.target_type is None or e.target_type == q.target_type)
            and (q.target_id is None or e.target_id == q.target_id)
            and (q.actor is None or q.actor in (e.actor_id, e.actor_name, e.actor_key_prefix))
            and (q.status is None or rules.status_matches(q.status, e.status_code)))


class AuditWriter:
    """Records audit events, batching concurrent ones into one transaction."""

    def __init__(self, event_log: EventLog, recorded: Callable[[], None]):
        self._log = event_log
        self._recorded = recorded
        self._pending: list[tuple[AuditRecorded, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.written = 0
        self.batches = 0
        self.failed = 0

    async def record(self, entry: AuditRecorded) -> None:
        """Returns once the entry is in the event log (or its write failed, which is logged: the audited
        call already happened, so it is not turned into an error)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="audit-writer")
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            aggregates = [(uuid.UUID(entry.audit_id), 0, [entry]) for entry, _ in batch]
            try:
                first, *more = aggregates
                await asyncio.to_thread(self._log.append, first[0], first[1], first[2], {}, *more)
                self.written += len(batch)
                self.batches += 1
                self._recorded()
            except Exception:
                self.failed += len(batch)
                log.exception("could not record %d audit event(s)", len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def drain(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)


def new_audit_id() -> str:
    return str(uuid.uuid4())


def to_builtins(item: AuditItem) -> dict[str, Any]:
    return msgspec.to_builtins(item.event)
