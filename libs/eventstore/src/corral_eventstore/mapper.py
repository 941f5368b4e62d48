"""A msgspec mapper for `eventsourcing`: contract structs are the stored events.

The library stores `StoredEvent(originator_id, originator_version, topic, state)`. Here the topic is
the payload's tag (e.g. `SandboxCreated`) and the state is the msgspec JSON of `{timestamp, meta,
payload}`, decoded back through the context's tagged union: no second definition of any event.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """A domain event as `eventsourcing` sees it: position in an aggregate plus a contract payload."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    payload: Any
    meta: dict[str, str] = {}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class MsgspecMapper(Mapper):  # type: ignore[type-arg]
    def __init__(self, union: Any) -> None:
        super().__init__(transcoder=None)  # type: ignore[arg-type]
        state = msgspec.defstruct(
            "StoredState",
            [("timestamp", datetime), ("payload", union), ("meta", dict[str, str], {})],
            frozen=True,
        )
        self._state_type = state
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(state)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        payload = domain_event.payload
        state = self._state_type(timestamp=domain_event.timestamp, payload=payload, meta=domain_event.meta)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=type(payload).__struct_config__.tag,
            state=self._encoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Recorded:
        state = self._decoder.decode(stored_event.state)
        originator_id = stored_event.originator_id
        return Recorded(
            originator_id=originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id)),
            originator_version=stored_event.originator_version,
            timestamp=state.timestamp,
            payload=state.payload,
            meta=state.meta,
        )
