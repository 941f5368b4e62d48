"""What the api asks the webhooks service on a caller's behalf: the delivery log, replays, test sends.
The api has checked that the endpoint belongs to the caller's organization; this checks it again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from corral_api.domain.webhook_endpoint import WebhookEndpoint
from corral_contracts import codecs
from corral_contracts import webhooks as wh
from corral_eventstore import ConcurrencyConflict, utcnow

from ..domain.catalog import example
from ..domain.ledger import DeliveryState
from .journal import Journal, key

MAX_REPLAY = 10_000
"""Deliveries one replay request sends again, at most."""


class Refusal(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.error = wh.RpcError(status=status, message=message, code=code)


class Desk:
    def __init__(self, journal: Journal, *, clock: Callable[[], datetime] = utcnow, catch_up_wait: float = 5.0):
        self._journal = journal
        self._ledger = journal.ledger
        self._clock = clock
        self._wait = catch_up_wait

    def deliveries(self, request: wh.DeliveriesRequest) -> wh.DeliveriesReply:
        endpoint = self._ledger.endpoint(request.endpoint_id)
        if endpoint is not None and endpoint.organization_id != request.organization_id:
            raise Refusal(404, f"Webhook endpoint {request.endpoint_id} not found", "NOT_FOUND")
        if request.delivery_id is not None:
            found = self._ledger.deliveries.get(request.delivery_id)
            if found is None or found.endpoint_id != request.endpoint_id:
                return wh.DeliveriesReply()
            return wh.DeliveriesReply(items=[found.view()])
        limit = max(1, min(request.limit, 200))
        items: list[wh.DeliveryView] = []
        next_cursor = last = None
        for delivery_id in reversed(self._ledger.by_endpoint.get(request.endpoint_id, [])):
            delivery = self._ledger.deliveries[delivery_id]
            if request.before is not None and delivery.position >= request.before:
                continue
            if request.since is not None and delivery.created_at < request.since:
                continue
            if request.status is not None and delivery.status != request.status:
                continue
            if len(items) == limit:
                next_cursor = last
                break
            items.append(delivery.view())
            last = delivery.position
        return wh.DeliveriesReply(items=items, next_cursor=next_cursor)

    async def _known(self, organization_id: str, endpoint_id: str, version: int) -> WebhookEndpoint:
        """The endpoint once this service has followed it up to `version` (the api's)."""
        def known() -> bool:
            endpoint = self._ledger.endpoint(endpoint_id)
            return endpoint is not None and endpoint.version >= version

        if not await self._journal.wait_for(known, self._wait):
            raise Refusal(503, "The webhooks service has not caught up with this endpoint yet; try again shortly",
                          "WEBHOOKS_CATCHING_UP")
        endpoint = self._ledger.endpoint(endpoint_id)
        assert endpoint is not None
        if endpoint.organization_id != organization_id or endpoint.deleted:
            raise Refusal(404, f"Webhook endpoint {endpoint_id} not found", "NOT_FOUND")
        if not endpoint.enabled:
            raise Refusal(409, f"Webhook endpoint {endpoint_id} is disabled; enable it first", "INVALID_STATE")
        return endpoint

    async def replay(self, request: wh.ReplayRequest) -> wh.ReplayReply:
        endpoint = await self._known(request.organization_id, request.endpoint_id, request.endpoint_version)
        if request.delivery_id is not None:
            chosen = self._ledger.deliveries.get(request.delivery_id)
            if chosen is None or chosen.endpoint_id != endpoint.id:
                raise Refusal(404, f"Delivery {request.delivery_id} not found", "NOT_FOUND")
            selected = [chosen.delivery_id]
        elif request.since is not None:
            selected = [d for d in self._ledger.by_endpoint.get(endpoint.id, [])
                        if self._selected(self._ledger.deliveries[d], request.since, request.failed_only)]
            if len(selected) > MAX_REPLAY:
                raise Refusal(400, f"{len(selected)} deliveries since {request.since.isoformat()}: at most "
                                   f"{MAX_REPLAY} are replayed at once; choose a later time", "TOO_MANY")
        else:
            raise Refusal(400, "Give a delivery or a time to replay from", "BAD_REQUEST")
        for delivery_id in selected:
            await self._replay_one(delivery_id, request.requested_by)
        return wh.ReplayReply(delivery_ids=selected)

    @staticmethod
    def _selected(delivery: DeliveryState, since: datetime, failed_only: bool) -> bool:
        return delivery.created_at >= since and (not failed_only or delivery.status == "failed")

    async def _replay_one(self, delivery_id: str, requested_by: str) -> None:
        for _ in range(10):
            delivery = self._ledger.deliveries[delivery_id]
            replayed = wh.WebhookDeliveryReplayed(delivery_id=delivery_id, due_at=self._clock(),
                                                  requested_by=requested_by)
            try:
                await self._journal.write([(key("delivery", delivery_id), delivery.version, [replayed])])
                return
            except ConcurrencyConflict:
                await self._journal.catch_up()  # an attempt was recorded meanwhile
        raise Refusal(409, f"Delivery {delivery_id} is changing too quickly; try again", "CONFLICT")

    async def send_test(self, request: wh.SendTestRequest) -> wh.SendTestReply:
        endpoint = await self._known(request.organization_id, request.endpoint_id, request.endpoint_version)
        event_type = request.event_type or wh.TEST_EVENT_TYPE
        if event_type not in wh.EVENT_TYPES and event_type != wh.TEST_EVENT_TYPE:
            raise Refusal(400, f"unknown event type {event_type!r}", "BAD_REQUEST")
        now = self._clock()
        delivery_id = "msg_" + uuid.uuid4().hex
        body = codecs.encode(example(event_type, endpoint.organization_id, now)).decode()
        scheduled = wh.WebhookDeliveryScheduled(
            delivery_id=delivery_id, endpoint_id=endpoint.id, organization_id=endpoint.organization_id,
            event_type=event_type, event_id=f"test:{delivery_id}", body=body, due_at=now, test=True)
        await self._journal.write([(key("delivery", delivery_id), 0, [scheduled])])
        return wh.SendTestReply(delivery=self._ledger.deliveries[delivery_id].view())
