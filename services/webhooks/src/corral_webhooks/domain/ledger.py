"""The webhooks service's state, folded from its store: the endpoints and resources it follows, every
delivery with its attempts, and each endpoint's health. Pure: the store's events go in, in order, and the
fold is the same at start-up (from zero) and while running (after each write).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from corral_api.domain import webhook_endpoint as endpoint_domain
from corral_api.domain.webhook_endpoint import WebhookEndpoint
from corral_contracts import webhooks as wh
from corral_eventstore import Recorded

from .catalog import SOURCE_OF, Tracked, change

SOURCE_VERSION = "Corral-Source-Version"
"""Metadata of a kept copy: the aggregate version of the original event at the api."""
SOURCE_EVENT = "Corral-Source-Event"


class Health(msgspec.Struct, kw_only=True):
    """Failures since the endpoint's last successful attempt (or its last change by its owner)."""

    failing_since: datetime | None = None
    failures: int = 0
    last_error: str = ""


class DeliveryState(msgspec.Struct, kw_only=True):
    delivery_id: str
    endpoint_id: str
    organization_id: str
    event_type: str
    event_id: str
    body: str
    test: bool
    created_at: datetime
    position: int
    """Store position of its scheduling: the order of the delivery log and its cursor."""
    version: int = 1
    status: str = "pending"
    next_attempt_at: datetime | None = None
    failures_in_round: int = 0
    failure: str = ""
    attempts: list[wh.AttemptView] = msgspec.field(default_factory=list)

    def view(self) -> wh.DeliveryView:
        return wh.DeliveryView(delivery_id=self.delivery_id, endpoint_id=self.endpoint_id, event_type=self.event_type,
                               event_id=self.event_id, status=self.status, created_at=self.created_at, body=self.body,
                               test=self.test, next_attempt_at=self.next_attempt_at, failure=self.failure,
                               attempts=list(self.attempts))


class Mirror(msgspec.Struct, kw_only=True):
    """An endpoint as the api last described it (`endpoint.version` is the api's version)."""

    endpoint: WebhookEndpoint
    store_version: int


class Ledger:
    def __init__(self) -> None:
        self.position = 0
        """Store notification id folded so far."""
        self.tracked = 0
        """The platform event (api notification id) processed last."""
        self.endpoints: dict[str, Mirror] = {}
        self.resources: dict[tuple[str, str], Tracked] = {}
        self.deliveries: dict[str, DeliveryState] = {}
        self.by_endpoint: dict[str, list[str]] = {}
        self.health: dict[str, Health] = {}
        self.due: list[Callable[[DeliveryState], None]] = []
        """Told of a delivery that has an attempt due (scheduled, retried, replayed)."""
        self.endpoint_changed: list[Callable[[str], None]] = []
        """Told of an endpoint that changed (disabled, deleted, ...)."""

    @property
    def pending(self) -> int:
        return sum(1 for d in self.deliveries.values() if d.status == "pending")

    def apply(self, position: int, recorded: Recorded) -> None:
        self.position = max(self.position, position)
        payload = recorded.payload
        if isinstance(payload, wh.WebhookDeliveryScheduled | wh.WebhookDeliveryAttempted | wh.WebhookDeliveryReplayed
                      | wh.WebhookDeliveryAbandoned):
            self._delivery(position, recorded, payload)
        elif isinstance(payload, _ENDPOINT_EVENTS):
            self._endpoint(recorded, payload)
        elif type(payload) in SOURCE_OF:
            self._resource(recorded, payload)

    def _endpoint(self, recorded: Recorded, payload: Any) -> None:
        mirror = self.endpoints.get(payload.endpoint_id)
        version = int(recorded.meta.get(SOURCE_VERSION, "0"))
        after = endpoint_domain.evolve(mirror.endpoint if mirror else None, payload, version, recorded.timestamp)
        if after is None:
            return
        self.endpoints[payload.endpoint_id] = Mirror(endpoint=after, store_version=recorded.originator_version)
        if isinstance(payload, wh.WebhookEndpointCreated | wh.WebhookEndpointUpdated):
            self.health.pop(payload.endpoint_id, None)  # its owner changed it: a new start
        for listener in self.endpoint_changed:
            listener(payload.endpoint_id)

    def _resource(self, recorded: Recorded, payload: Any) -> None:
        source = SOURCE_OF[type(payload)]
        key = (source.kind, source.key(payload))
        result = change(source, self.resources.get(key), payload, recorded.timestamp, recorded.meta)
        if result is not None:
            self.resources[key] = msgspec.structs.replace(result.after, store_version=recorded.originator_version)

    def _delivery(self, position: int, recorded: Recorded, payload: Any) -> None:
        if isinstance(payload, wh.WebhookDeliveryScheduled):
            delivery = DeliveryState(
                delivery_id=payload.delivery_id, endpoint_id=payload.endpoint_id,
                organization_id=payload.organization_id, event_type=payload.event_type, event_id=payload.event_id,
                body=payload.body, test=payload.test, created_at=recorded.timestamp, position=position,
                next_attempt_at=payload.due_at)
            self.deliveries[payload.delivery_id] = delivery
            self.by_endpoint.setdefault(payload.endpoint_id, []).append(payload.delivery_id)
            self._tell(delivery)
            return
        delivery = self.deliveries.get(payload.delivery_id)
        if delivery is None:
            return
        delivery.version = recorded.originator_version
        match payload:
            case wh.WebhookDeliveryAttempted():
                delivery.attempts.append(wh.AttemptView(
                    attempt=payload.attempt, url=payload.url, at=payload.at, succeeded=payload.succeeded,
                    status_code=payload.status_code, latency_ms=payload.latency_ms, response=payload.response,
                    error=payload.error))
                self._health(delivery.endpoint_id, payload)
                if payload.succeeded:
                    delivery.status, delivery.next_attempt_at, delivery.failure = "succeeded", None, ""
                    return
                delivery.failures_in_round += 1
                delivery.next_attempt_at = payload.next_attempt_at
                if payload.next_attempt_at is None:
                    delivery.status = "failed"
                    delivery.failure = f"every attempt failed; the last: {describe(payload)}"
                else:
                    delivery.status = "pending"
                    self._tell(delivery)
            case wh.WebhookDeliveryReplayed(due_at=due_at):
                delivery.status, delivery.next_attempt_at, delivery.failure = "pending", due_at, ""
                delivery.failures_in_round = 0
                self._tell(delivery)
            case wh.WebhookDeliveryAbandoned(reason=reason):
                delivery.status, delivery.next_attempt_at, delivery.failure = "failed", None, reason

    def _health(self, endpoint_id: str, attempt: wh.WebhookDeliveryAttempted) -> None:
        if attempt.succeeded:
            self.health.pop(endpoint_id, None)
            return
        health = self.health.setdefault(endpoint_id, Health())
        health.failing_since = health.failing_since or attempt.at
        health.failures += 1
        health.last_error = describe(attempt)

    def _tell(self, delivery: DeliveryState) -> None:
        for listener in self.due:
            listener(delivery)

    # --- reading --------------------------------------------------------------------------------

    def pending_of(self, endpoint_id: str) -> list[DeliveryState]:
        return [d for d in (self.deliveries[i] for i in self.by_endpoint.get(endpoint_id, [])) if d.status == "pending"]

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        mirror = self.endpoints.get(endpoint_id)
        return mirror.endpoint if mirror else None

    def matching(self, organization_id: str, event_type: str) -> list[WebhookEndpoint]:
        """The endpoints a new event of this type goes to: enabled, of the organization, subscribed."""
        return sorted((m.endpoint for m in self.endpoints.values()
                       if m.endpoint.organization_id == organization_id and m.endpoint.enabled
                       and not m.endpoint.deleted
                       and (not m.endpoint.event_types or event_type in m.endpoint.event_types)),
                      key=lambda e: e.id)


def describe(attempt: wh.WebhookDeliveryAttempted) -> str:
    if attempt.error:
        return attempt.error
    return f"HTTP {attempt.status_code}"


_ENDPOINT_EVENTS = (wh.WebhookEndpointCreated, wh.WebhookEndpointUpdated, wh.WebhookEndpointSecretRotated,
                    wh.WebhookEndpointDisabled, wh.WebhookEndpointDeleted)
