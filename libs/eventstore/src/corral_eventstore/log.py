"""The event log: an `eventsourcing` Application whose events are contract structs.

Synchronous, like the library: async callers run these methods in a thread.
Persistence is chosen by environment: SQLite (`sqlite:///path`) by default, PostgreSQL
(`postgresql://user:pass@host:port/db`) when configured.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from .mapper import MsgspecMapper, Recorded, utcnow

A = TypeVar("A")


class ConcurrencyConflict(Exception):
    """Another writer recorded an event at the same aggregate version first."""


def environment_for(database_url: str) -> dict[str, str]:
    url = urlparse(database_url)
    if url.scheme == "sqlite":
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": unquote(url.path) or ":memory:",
                "SQLITE_LOCK_TIMEOUT": "10"}
    if url.scheme in ("postgres", "postgresql"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or ""),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
        }
    if url.scheme == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    raise ValueError(f"unsupported event store URL: {database_url!r}")


class EventLog(Application):  # type: ignore[type-arg]
    name = "corral"

    def __init__(self, union: Any, database_url: str) -> None:
        self._union = union
        self._busy = 0
        self._idle = threading.Condition()
        super().__init__(env=environment_for(database_url))

    @contextmanager
    def _in_use(self) -> Iterator[None]:
        """Counts calls in flight (they run in worker threads), so `close` never pulls a connection from
        under one: a task cancelled while its call runs on leaves the call running."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Close the store once the calls in flight have finished (waiting at most `timeout` seconds)."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)
        super().close()

    def construct_mapper(self) -> MsgspecMapper:
        return MsgspecMapper(self._union)

    def construct_recorder(self) -> Any:
        return self.factory.process_recorder()

    # --- writing -----------------------------------------------------------------------------

    def append(self, aggregate_id: UUID, after_version: int, payloads: Sequence[Any], meta: dict[str, str] | None = None,
               *more: tuple[UUID, int, Sequence[Any]], tracking: tuple[str, int] | None = None) -> int:
        """Record `payloads` after `after_version` of one aggregate (and optionally of others, in the
        same transaction). Returns the last notification id. Raises `ConcurrencyConflict`.

        `tracking=(name, position)` records a consumer's position in the same transaction: a position
        recorded before makes the whole append fail with `ConcurrencyConflict` (exactly-once processing)."""
        writes = [(agg_id, version, items, meta or {}) for agg_id, version, items in ((aggregate_id, after_version,
                                                                                        payloads), *more)]
        return self.record(writes, tracking=tracking)

    def record(self, writes: Sequence[tuple[UUID, int, Sequence[Any], dict[str, str]]],
               tracking: tuple[str, int] | None = None) -> int:
        """Like `append`, each aggregate's events with metadata of their own: several writers' changes
        committed in one transaction (a group commit). Raises `ConcurrencyConflict`: nothing recorded."""
        now = utcnow()
        events = [
            Recorded(originator_id=agg_id, originator_version=version + i + 1, timestamp=now, payload=p, meta=meta)
            for agg_id, version, items, meta in writes
            for i, p in enumerate(items)
        ]
        try:
            with self._in_use():
                if tracking is None:
                    recordings = self.save(*events)
                else:
                    recordings = self.events.put(events, tracking=Tracking(application_name=tracking[0],
                                                                           notification_id=tracking[1]))
        except IntegrityError as error:
            raise ConcurrencyConflict(str(error)) from error
        return max(r.notification.id for r in recordings) if recordings else 0

    # --- reading -----------------------------------------------------------------------------

    def history(self, aggregate_id: UUID) -> list[Recorded]:
        with self._in_use():
            return list(self.events.get(aggregate_id))  # type: ignore[arg-type]

    def version(self, aggregate_id: UUID) -> int:
        """The aggregate's last version (0 when it has no event), read without loading its history: for
        a stream used as a serialization point (append after this version or conflict)."""
        with self._in_use():
            last = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def load(self, aggregate_id: UUID, fold: Callable[[A | None, Recorded], A]) -> A | None:
        state: A | None = None
        for event in self.history(aggregate_id):
            state = fold(state, event)
        return state

    def notifications(self, after: int, limit: int = 500) -> Sequence[Notification]:
        with self._in_use():
            return self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)

    def decode(self, notification: Notification) -> Recorded:
        return self.mapper.to_domain_event(notification)

    def last_notification_id(self) -> int:
        with self._in_use():
            return self.recorder.max_notification_id() or 0

    def tracked(self, name: str) -> int:
        with self._in_use():
            return self.recorder.max_tracking_id(name) or 0

    def track(self, name: str, notification_id: int) -> None:
        with self._in_use():
            self.recorder.insert_tracking(Tracking(application_name=name, notification_id=notification_id))


def iter_all(log: EventLog, after: int = 0, batch: int = 1000) -> Iterable[tuple[int, Recorded]]:
    """Every recorded event after a position, in order."""
    while True:
        page = log.notifications(after, batch)
        if not page:
            return
        for n in page:
            yield n.id, log.decode(n)
        after = page[-1].id


__all__ = ["AggregateNotFoundError", "ConcurrencyConflict", "EventLog", "environment_for", "iter_all"]
