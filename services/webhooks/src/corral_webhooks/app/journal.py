"""The store and the ledger together: writes go to the store, and the ledger folds what was written.

Every change of the ledger comes from the store (at start-up from zero, afterwards after each write), so
what the service knows after a crash is exactly what it knew before: what it had recorded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from ..domain.ledger import Ledger
from .ports import Store

NAMESPACE = uuid.UUID("6f1d0c52-4b0e-4a8e-9a57-8e5c3f0d2b11")
TRACKING = "webhooks-evt"
"""The store's tracking name for the platform events (EVT) processed."""


def key(kind: str, identifier: str) -> uuid.UUID:
    """The store aggregate of a delivery, an endpoint or a followed resource."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{identifier}")


class Journal:
    def __init__(self, store: Store, ledger: Ledger, *, page: int = 1000):
        self.store = store
        self.ledger = ledger
        self._page = page
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()

    async def open(self) -> None:
        self.ledger.tracked = await asyncio.to_thread(self.store.tracked, TRACKING)
        await self.catch_up()

    async def catch_up(self) -> int:
        """Fold everything written since the last fold; returns the store position reached."""
        async with self._lock:
            while True:
                page = await asyncio.to_thread(self._read, self.ledger.position)
                if not page:
                    break
                for position, recorded in page:
                    self.ledger.apply(position, recorded)
        async with self._changed:
            self._changed.notify_all()
        return self.ledger.position

    def _read(self, after: int) -> list[tuple[int, Any]]:
        return [(n.id, self.store.decode(n)) for n in self.store.notifications(after, self._page)]

    async def write(self, writes: Sequence[tuple[uuid.UUID, int, Sequence[Any]]], meta: dict[str, str] | None = None,
                    tracking: int | None = None) -> None:
        """Record `writes` in one transaction (with the platform event position), then fold them.
        Raises `ConcurrencyConflict` (nothing recorded) when an aggregate moved on meanwhile."""
        first, *more = writes
        await asyncio.to_thread(self.store.append, first[0], first[1], first[2], meta, *more,
                                tracking=None if tracking is None else (TRACKING, tracking))
        if tracking is not None:
            self.ledger.tracked = max(self.ledger.tracked, tracking)
        await self.catch_up()

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
