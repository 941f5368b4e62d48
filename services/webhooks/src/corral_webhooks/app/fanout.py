"""Platform events in, deliveries out: for each event from `EVT`, in order, record in one transaction what
it changes (the webhooks service's copy of an endpoint or of a followed resource) and one delivery per
(webhook event, matching endpoint), together with the event's position. Only then is the event acked: a
crash before the commit redoes it, a crash after it finds the position recorded and does nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from corral_contracts import codecs
from corral_contracts import webhooks as wh
from corral_contracts.envelope import EventEnvelope
from corral_eventstore import ConcurrencyConflict, utcnow
from corral_messaging import TransientError

from ..domain.catalog import SOURCE_OF, change
from ..domain.ledger import SOURCE_EVENT, SOURCE_VERSION
from .journal import Journal, key

log = logging.getLogger(__name__)

DELIVERY_NAMESPACE = uuid.UUID("0b7f7f5e-57a6-4f6f-9d3c-2c8f5a1e6d40")
ENDPOINT_EVENTS = (wh.WebhookEndpointCreated, wh.WebhookEndpointUpdated, wh.WebhookEndpointSecretRotated,
                   wh.WebhookEndpointDisabled, wh.WebhookEndpointDeleted)

Writes = list[tuple[uuid.UUID, int, list[Any]]]


def message_id(event_id: str, event_type: str, endpoint_id: str) -> str:
    """The `webhook-id` of one event at one endpoint: derived, so the same on every attempt, replay and
    re-processing after a crash (receivers de-duplicate on it)."""
    return "msg_" + uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}|{event_type}|{endpoint_id}").hex


class Fanout:
    def __init__(self, journal: Journal, clock: Callable[[], datetime] = utcnow):
        self._journal = journal
        self._ledger = journal.ledger
        self._clock = clock

    async def handle(self, envelope: EventEnvelope[Any]) -> None:
        if envelope.sequence <= self._ledger.tracked:
            return  # recorded before a crash or a redelivery: done already
        for _ in range(3):
            planned = self.plan(envelope)
            if planned is None:
                return
            writes, meta = planned
            try:
                await self._journal.write(writes, meta, tracking=envelope.sequence)
                return
            except ConcurrencyConflict:
                if await self._journal.refresh_tracked() >= envelope.sequence:
                    await self._journal.catch_up()
                    return
                await self._journal.catch_up()  # the ledger was behind the store: plan again
        raise TransientError(f"could not record event {envelope.event_id}")

    def plan(self, envelope: EventEnvelope[Any]) -> tuple[Writes, dict[str, str]] | None:
        payload = envelope.payload
        meta = {**envelope.meta, SOURCE_EVENT: envelope.event_id, SOURCE_VERSION: str(envelope.aggregate_version)}
        if isinstance(payload, ENDPOINT_EVENTS):
            mirror = self._ledger.endpoints.get(payload.endpoint_id)
            return [(key("endpoint", payload.endpoint_id), mirror.store_version if mirror else 0, [payload])], meta
        source = SOURCE_OF.get(type(payload))
        if source is None:
            return None
        resource_id = source.key(payload)
        before = self._ledger.resources.get((source.kind, resource_id))
        result = change(source, before, payload, envelope.occurred_at, envelope.meta)
        if result is None:
            return None
        writes: Writes = []
        if result.kept is not None:
            writes.append((key(source.kind, resource_id), before.store_version if before else 0, [result.kept]))
        now = self._clock()
        for notice in result.notices:
            body = codecs.encode(notice.payload).decode()
            for endpoint in self._ledger.matching(notice.organization_id, notice.event_type):
                delivery_id = message_id(envelope.event_id, notice.event_type, endpoint.id)
                writes.append((key("delivery", delivery_id), 0, [wh.WebhookDeliveryScheduled(
                    delivery_id=delivery_id, endpoint_id=endpoint.id, organization_id=endpoint.organization_id,
                    event_type=notice.event_type, event_id=envelope.event_id, body=body, due_at=now)]))
        return (writes, meta) if writes else None
