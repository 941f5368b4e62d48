"""What the webhooks service needs from the outside: a store (the event log) and an HTTP sender."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification

from corral_eventstore import Recorded


class Store(Protocol):
    """The `corral_eventstore.EventLog` interface (synchronous: called in a thread)."""

    def record(self, writes: Sequence[tuple[UUID, int, Sequence[Any], dict[str, str]]],
               tracking: tuple[str, int] | None = None) -> int: ...

    def notifications(self, after: int, limit: int = 500) -> Sequence[Notification]: ...

    def decode(self, notification: Notification) -> Recorded: ...

    def tracked(self, name: str) -> int: ...

    def close(self) -> None: ...


class AttemptResult(msgspec.Struct, frozen=True, kw_only=True):
    succeeded: bool
    status_code: int | None = None
    latency_ms: float = 0.0
    response: str = ""
    error: str = ""


class Sender(Protocol):
    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        """POST `body` to `url` once: no redirects, a bounded time, a small excerpt of the response read.
        Never raises for a failed attempt: the result says what happened."""
