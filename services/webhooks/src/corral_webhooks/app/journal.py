"""The store and the ledger together: writes go to the store, and the ledger folds what was written.

Every change of the ledger comes from the store (at start-up from zero, afterwards after each write), so
what the service knows after a crash is exactly what it knew before: what it had recorded.

Writes are group-committed: whatever many writers (the EVT consumer, attempts in flight, replays) ask
while a transaction is being committed goes into the next one, so SQLite commits once per batch rather
than once per attempt, and writers never wait on each other's locks. A batch that conflicts is retried
write by write, so one stale writer fails alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from corral_eventstore import ConcurrencyConflict

from ..domain.ledger import Ledger
from .ports import Store

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6f1d0c52-4b0e-4a8e-9a57-8e5c3f0d2b11")
TRACKING = "webhooks-evt"
"""The store's tracking name for the platform events (EVT) processed."""
BATCH = 512
"""Writes committed together at most."""

Write = tuple[uuid.UUID, int, Sequence[Any]]


def key(kind: str, identifier: str) -> uuid.UUID:
    """The store aggregate of a delivery, an endpoint or a followed resource."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{identifier}")


class _Pending:
    __slots__ = ("writes", "tracking", "done")

    def __init__(self, writes: list[tuple[uuid.UUID, int, Sequence[Any], dict[str, str]]], tracking: int | None,
                 done: asyncio.Future[None]):
        self.writes = writes
        self.tracking = tracking
        self.done = done


class Journal:
    def __init__(self, store: Store, ledger: Ledger, *, page: int = 1000):
        self.store = store
        self.ledger = ledger
        self._page = page
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0

    async def open(self) -> None:
        self.ledger.tracked = await asyncio.to_thread(self.store.tracked, TRACKING)
        await self.catch_up()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    async def catch_up(self, page: list[tuple[int, Any]] | None = None) -> int:
        """Fold everything written since the last fold (starting with `page`, already read); returns the
        store position reached."""
        async with self._lock:
            while True:
                if page is None:
                    page = await asyncio.to_thread(self._read, self.ledger.position)
                if not page:
                    break
                for position, recorded in page:
                    if position > self.ledger.position:
                        self.ledger.apply(position, recorded)
                page = None
        async with self._changed:
            self._changed.notify_all()
        return self.ledger.position

    def _read(self, after: int) -> list[tuple[int, Any]]:
        return [(n.id, self.store.decode(n)) for n in self.store.notifications(after, self._page)]

    async def write(self, writes: Sequence[Write], meta: dict[str, str] | None = None,
                    tracking: int | None = None) -> None:
        """Record `writes` in one transaction (with the platform event position), then fold them.
        Raises `ConcurrencyConflict` (nothing recorded) when an aggregate moved on meanwhile."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="webhooks-journal")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending([(k, v, list(p), dict(meta or {})) for k, v, p in writes], tracking, done))
        self._queued.set()
        await done

    async def _write_forever(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                await self._write_batch()

    async def _write_batch(self) -> None:
        batch = [self._queue.popleft()]
        while self._queue and len(batch) < BATCH:
            if self._queue[0].tracking is not None and any(p.tracking is not None for p in batch):
                break  # one tracked write per transaction
            batch.append(self._queue.popleft())
        outcomes, written = await self._commit(batch)
        try:
            await self.catch_up(written)
        except Exception as error:  # the writes are committed; folding them failed: tell the writers
            log.exception("folding committed writes failed")
            outcomes = [error] * len(batch)
        for pending, outcome in zip(batch, outcomes):
            if pending.done.done():
                continue
            if outcome is None:
                pending.done.set_result(None)
            else:
                pending.done.set_exception(outcome)

    async def _commit(self, batch: list[_Pending]) -> tuple[list[BaseException | None], list[tuple[int, Any]] | None]:
        """Commit the batch, and read back what is new in the store in the same thread hop."""
        try:
            return [None] * len(batch), await self._record(batch)
        except ConcurrencyConflict as error:
            if len(batch) == 1:
                return [error], None
        except Exception as error:
            return [error] * len(batch), None
        outcomes: list[BaseException | None] = []
        for pending in batch:  # isolate the writer that conflicts
            try:
                await self._record([pending])
                outcomes.append(None)
            except Exception as error:
                outcomes.append(error)
        return outcomes, None

    async def _record(self, batch: list[_Pending]) -> list[tuple[int, Any]]:
        tracking = next((p.tracking for p in batch if p.tracking is not None), None)
        writes = [w for p in batch for w in p.writes]
        after = self.ledger.position

        def record_and_read() -> list[tuple[int, Any]]:
            self.store.record(writes, None if tracking is None else (TRACKING, tracking))
            return self._read(after)

        written = await asyncio.to_thread(record_and_read)
        self.commits += 1
        if tracking is not None:
            self.ledger.tracked = max(self.ledger.tracked, tracking)
        return written

    async def refresh_tracked(self) -> int:
        self.ledger.tracked = max(self.ledger.tracked, await asyncio.to_thread(self.store.tracked, TRACKING))
        return self.ledger.tracked

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
                return True
            except TimeoutError:
                return False
