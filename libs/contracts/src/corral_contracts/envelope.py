"""Envelopes: what travels on `CMD` and `EVT` around a context's payload union."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import msgspec

P = TypeVar("P")


class EventEnvelope(msgspec.Struct, Generic[P], frozen=True, kw_only=True):
    """An event as published on `EVT`.

    `event_id` is globally unique and doubles as the `Nats-Msg-Id`. For events recorded in the api's
    event store it is `"n<notification id>"`, and `sequence` is that notification id, so consumers can
    detect order and gaps; facts reported by runners carry `sequence=0` and a runner-chosen id.
    """

    event_id: str
    aggregate_id: str
    aggregate_version: int = 0
    sequence: int = 0
    occurred_at: datetime
    meta: dict[str, str] = {}
    payload: P


class CommandEnvelope(msgspec.Struct, Generic[P], frozen=True, kw_only=True):
    """A command as published on `CMD`; `command_id` doubles as the `Nats-Msg-Id`."""

    command_id: str
    issued_at: datetime
    meta: dict[str, str] = {}
    payload: P
