"""Webhooks: the catalogue of webhook event types, the api's WebhookEndpoint aggregate, what the webhooks
service records about its deliveries, and the request/reply messages between the two.

- `WebhookEndpoint*` events are recorded by the api (it owns the aggregate) and published on
  `evt.webhook_endpoint.*`; the webhooks service follows them to know where to deliver. They carry the
  endpoint's signing secret (the webhooks service signs with it), as `evt.sandbox.signing_key_rotated`
  carries a sandbox's key: EVT is internal. The secret never appears in a webhook payload or a timeline.
- `WebhookDelivery*` events are recorded by the webhooks service in its own store (never on NATS): one
  delivery per (event, endpoint), identified by its Standard Webhooks `webhook-id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Union

import msgspec

# --- the catalogue -------------------------------------------------------------------------------

EVENT_TYPES: dict[str, str] = {
    "sandbox.created": "A sandbox was created (payload: id, organizationId, state, sandboxClass, createdAt)",
    "sandbox.state.updated": "A sandbox changed state (payload: id, organizationId, oldState, newState, updatedAt)",
    "snapshot.created": "A snapshot was created (payload: id, name, organizationId, state, createdAt)",
    "snapshot.state.updated": "A snapshot changed state (payload: id, name, organizationId, oldState, newState, "
                              "updatedAt)",
    "snapshot.removed": "A snapshot was removed (payload: id, name, organizationId, removedAt)",
    "volume.created": "A volume was created (payload: id, name, organizationId, state, createdAt)",
    "volume.state.updated": "A volume changed state (payload: id, name, organizationId, oldState, newState, "
                            "updatedAt)",
}
"""Every webhook event type an endpoint can subscribe to, with what it means. Every payload also has
`event` (the type), `timestamp` (ISO 8601) and `cause` (who or what made the change)."""

TEST_EVENT_TYPE = "webhook.test"
"""The type of a test delivery (`POST …/test` without an event type)."""

# --- the api's WebhookEndpoint aggregate (evt.webhook_endpoint.*) ----------------------------------


class _EndpointEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "webhook_endpoint"
    endpoint_id: str
    organization_id: str


class WebhookEndpointCreated(_EndpointEvent):
    url: str
    secret: str
    """`whsec_` + base64 of the key (Standard Webhooks)."""
    description: str = ""
    event_types: list[str] = []
    """The event types delivered; empty means every type."""
    enabled: bool = True


class WebhookEndpointUpdated(_EndpointEvent):
    """Fields set are changed; None leaves a field as it was. Enabling again clears an automatic disable."""

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


class WebhookEndpointSecretRotated(_EndpointEvent):
    """Deliveries from now on are signed with the new secret, and also with the previous one until
    `previous_expires_at` (receivers switch without missing a delivery; None: the previous one at once)."""

    secret: str
    previous_expires_at: datetime | None = None


class WebhookEndpointDisabled(_EndpointEvent):
    """The platform disabled an endpoint that kept failing; `reason` says why (shown to the organization)."""

    reason: str
    failing_since: datetime


class WebhookEndpointDeleted(_EndpointEvent):
    pass


WebhookEndpointEvent = Union[
    WebhookEndpointCreated, WebhookEndpointUpdated, WebhookEndpointSecretRotated, WebhookEndpointDisabled,
    WebhookEndpointDeleted,
]

# --- what the webhooks service records (its own store) ---------------------------------------------


class _DeliveryEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "webhook_delivery"
    delivery_id: str
    """The `webhook-id` header: `msg_…`, the same on every attempt and replay."""


class WebhookDeliveryScheduled(_DeliveryEvent):
    endpoint_id: str
    organization_id: str
    event_type: str
    event_id: str
    """The platform event it reports (`n<notification id>`), or `test:…` for a test delivery."""
    body: str
    """The exact JSON body sent on every attempt."""
    due_at: datetime
    test: bool = False


class WebhookDeliveryAttempted(_DeliveryEvent):
    attempt: int
    """1 for the first attempt, counting on across replays."""
    url: str
    at: datetime
    succeeded: bool
    status_code: int | None = None
    latency_ms: float = 0.0
    response: str = ""
    """The start of the response body (a small excerpt)."""
    error: str = ""
    """Why the attempt failed without an HTTP status (refused address, timeout, connection error)."""
    next_attempt_at: datetime | None = None
    """When the next retry is due; None after a success or the last retry."""


class WebhookDeliveryReplayed(_DeliveryEvent):
    """A delivery is sent again (same `webhook-id`), with a fresh retry schedule."""

    due_at: datetime
    requested_by: str = ""


class WebhookDeliveryAbandoned(_DeliveryEvent):
    """No more attempts: the endpoint was disabled or deleted before the delivery succeeded."""

    reason: str
    at: datetime


WebhookDeliveryEvent = Union[
    WebhookDeliveryScheduled, WebhookDeliveryAttempted, WebhookDeliveryReplayed, WebhookDeliveryAbandoned,
]

# --- request/reply between the api and the webhooks service ----------------------------------------


class RpcError(msgspec.Struct, frozen=True, kw_only=True):
    """A refusal the api turns into a JSON 4xx (`{"statusCode", "message", "code"}`)."""

    status: int
    message: str
    code: str


class AttemptView(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    url: str
    at: datetime
    succeeded: bool
    status_code: int | None = None
    latency_ms: float = 0.0
    response: str = ""
    error: str = ""


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    endpoint_id: str
    event_type: str
    event_id: str
    status: str
    """`pending` (an attempt is due), `succeeded` or `failed` (retries exhausted, or endpoint disabled/deleted)."""
    created_at: datetime
    body: str
    test: bool = False
    next_attempt_at: datetime | None = None
    failure: str = ""
    attempts: list[AttemptView] = []


class DeliveriesRequest(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    endpoint_id: str
    delivery_id: str | None = None
    """One delivery only."""
    since: datetime | None = None
    status: str | None = None
    limit: int = 50
    before: int | None = None
    """Cursor: only deliveries recorded before this position (newest first)."""


class DeliveriesReply(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeliveryView] = []
    next_cursor: int | None = None
    error: RpcError | None = None


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Send again one delivery (`delivery_id`), or every delivery of the endpoint created since `since`
    (only the failed ones with `failed_only`)."""

    organization_id: str
    endpoint_id: str
    endpoint_version: int
    """The endpoint's version at the api: the webhooks service waits until it knows that version."""
    delivery_id: str | None = None
    since: datetime | None = None
    failed_only: bool = False
    requested_by: str = ""


class ReplayReply(msgspec.Struct, frozen=True, kw_only=True):
    delivery_ids: list[str] = []
    error: RpcError | None = None


class SendTestRequest(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    endpoint_id: str
    endpoint_version: int
    event_type: str | None = None
    """An example of this type (marked `"test": true`), or a `webhook.test` event when None."""


class SendTestReply(msgspec.Struct, frozen=True, kw_only=True):
    delivery: DeliveryView | None = None
    error: RpcError | None = None


class DisableEndpointRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The webhooks service asks the api to disable an endpoint that keeps failing. `endpoint_version` is
    the version it judged: an endpoint changed since (re-enabled, a new URL) is left alone."""

    endpoint_id: str
    organization_id: str
    endpoint_version: int
    reason: str
    failing_since: datetime


class DisableEndpointReply(msgspec.Struct, frozen=True, kw_only=True):
    disabled: bool
    """True once the endpoint is disabled (now or before); False when it changed and was left alone."""
