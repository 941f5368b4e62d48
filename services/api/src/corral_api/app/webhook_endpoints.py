"""Use cases of webhook endpoints: the api owns the aggregate (load, decide, record); the delivery log,
replays and test sends belong to the webhooks service, asked over NATS request/reply so callers keep one
base URL. Nothing here speaks HTTP."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import typing

import msgspec

from corral_contracts import codecs
from corral_contracts import webhooks as wh
from corral_contracts.subjects import WEBHOOK_DELIVERIES, WEBHOOK_REPLAY, WEBHOOK_SEND_TEST
from corral_eventstore import ConcurrencyConflict, EventLog, Recorded
from corral_messaging import Bus, MessagingError
from corral_web.outbound import DestinationRefused, check_destination

from ..domain import webhook_endpoint as domain
from ..domain.errors import Conflict, DomainError, InvalidRequest, NotFound

MAX_ENDPOINTS = 100
"""Endpoints per organization."""


class WebhooksUnavailable(DomainError):
    status = 503
    code = "WEBHOOKS_UNAVAILABLE"


class Refused(DomainError):
    """A refusal answered by the webhooks service, passed on as it was given."""

    def __init__(self, error: wh.RpcError):
        super().__init__(error.message)
        self.status = error.status
        self.code = error.code


ENDPOINT_EVENTS = typing.get_args(wh.WebhookEndpointEvent)


def fold(state: domain.WebhookEndpoint | None, event: Recorded) -> domain.WebhookEndpoint | None:
    return domain.evolve(state, event.payload, event.originator_version, event.timestamp)


def new_secret() -> str:
    return domain.secret_from(secrets.token_bytes(32))


class EndpointIndex:
    """Read model: every live endpoint per organization, folded from the log with the sandbox directory."""

    def __init__(self) -> None:
        self.endpoints: dict[str, domain.WebhookEndpoint] = {}

    def apply(self, event: Recorded) -> None:
        payload = event.payload
        if not isinstance(payload, ENDPOINT_EVENTS):
            return
        after = domain.evolve(self.endpoints.get(payload.endpoint_id), payload, event.originator_version,
                              event.timestamp)
        if after is None or after.deleted:
            self.endpoints.pop(payload.endpoint_id, None)
        else:
            self.endpoints[payload.endpoint_id] = after

    def of(self, organization_id: str) -> list[domain.WebhookEndpoint]:
        return sorted((e for e in self.endpoints.values() if e.organization_id == organization_id),
                      key=lambda e: (e.created_at, e.id))


class WebhookService:
    def __init__(self, *, event_log: EventLog, index: EndpointIndex, bus: Bus, recorded: Callable[[], None],
                 caught_up: Callable[[], Any], allow_private: bool, rpc_timeout: float = 10.0):
        self._log = event_log
        self._index = index
        self._bus = bus
        self._recorded = recorded
        self._caught_up = caught_up
        self._allow_private = allow_private
        self._rpc_timeout = rpc_timeout

    # --- the aggregate --------------------------------------------------------------------------

    async def load(self, endpoint_id: str) -> domain.WebhookEndpoint | None:
        try:
            key = uuid.UUID(endpoint_id)
        except ValueError:
            return None
        return await asyncio.to_thread(self._log.load, key, fold)

    async def get(self, organization_id: str, endpoint_id: str) -> domain.WebhookEndpoint:
        endpoint = await self.load(endpoint_id)
        if endpoint is None or endpoint.organization_id != organization_id or endpoint.deleted:
            raise NotFound(f"Webhook endpoint {endpoint_id} not found")
        return endpoint

    def list(self, organization_id: str) -> list[domain.WebhookEndpoint]:
        return self._index.of(organization_id)

    async def _check_destination(self, url: str) -> None:
        domain.check_url(url)
        try:
            await check_destination(url, allow_private=self._allow_private)
        except DestinationRefused as error:
            raise InvalidRequest(f"url: {error}") from None

    async def create(self, organization_id: str, *, url: str, description: str, event_types: list[str],
                     enabled: bool, meta: dict[str, str]) -> domain.WebhookEndpoint:
        if len(self._index.of(organization_id)) >= MAX_ENDPOINTS:
            raise Conflict(f"An organization has at most {MAX_ENDPOINTS} webhook endpoints")
        endpoint_id = str(uuid.uuid4())
        events = domain.create(endpoint_id, organization_id, url=url, secret=new_secret(), description=description,
                               event_types=event_types, enabled=enabled)
        await self._check_destination(url)
        await asyncio.to_thread(self._log.append, uuid.UUID(endpoint_id), 0, events, meta)
        await self._after_write()
        return await self.get(organization_id, endpoint_id)

    async def _decide(self, organization_id: str, endpoint_id: str,
                      decide: Callable[[domain.WebhookEndpoint], list[Any]],
                      meta: dict[str, str]) -> domain.WebhookEndpoint:
        for _ in range(10):
            endpoint = await self.get(organization_id, endpoint_id)
            events = decide(endpoint)
            if not events:
                return endpoint
            try:
                await asyncio.to_thread(self._log.append, uuid.UUID(endpoint.id), endpoint.version, events, meta)
            except ConcurrencyConflict:
                continue
            await self._after_write()
            return await self.load(endpoint.id) or endpoint
        raise Conflict(f"Webhook endpoint {endpoint_id} is changing too quickly; try again")

    async def update(self, organization_id: str, endpoint_id: str, *, url: str | None, description: str | None,
                     event_types: list[str] | None, enabled: bool | None,
                     meta: dict[str, str]) -> domain.WebhookEndpoint:
        if url is not None:
            await self._check_destination(url)
        return await self._decide(organization_id, endpoint_id, lambda e: domain.update(
            e, url=url, description=description, event_types=event_types, enabled=enabled), meta)

    async def rotate_secret(self, organization_id: str, endpoint_id: str, meta: dict[str, str],
                            keep_previous: float = domain.PREVIOUS_SECRET_GRACE) -> domain.WebhookEndpoint:
        candidate = new_secret()
        now = datetime.now(timezone.utc)
        return await self._decide(organization_id, endpoint_id,
                                  lambda e: domain.rotate_secret(e, candidate, now, keep_previous), meta)

    async def delete(self, organization_id: str, endpoint_id: str, meta: dict[str, str]) -> None:
        await self._decide(organization_id, endpoint_id, domain.delete, meta)

    async def disable(self, request: wh.DisableEndpointRequest, meta: dict[str, str]) -> wh.DisableEndpointReply:
        """Asked by the webhooks service: the endpoint kept failing."""
        reason = request.reason

        def decide(endpoint: domain.WebhookEndpoint) -> list[Any]:
            return domain.disable(endpoint, judged_version=request.endpoint_version, reason=reason,
                                  failing_since=request.failing_since)

        try:
            endpoint = await self._decide(request.organization_id, request.endpoint_id, decide, meta)
        except NotFound:
            return wh.DisableEndpointReply(disabled=False)
        return wh.DisableEndpointReply(disabled=not endpoint.enabled)

    async def _after_write(self) -> None:
        self._recorded()
        await self._caught_up()

    # --- what the webhooks service holds ------------------------------------------------------------

    async def _ask(self, subject: str, request: msgspec.Struct, decoder: msgspec.json.Decoder) -> Any:
        try:
            data = await self._bus.request(subject, codecs.encode(request), timeout=self._rpc_timeout)
        except (MessagingError, TimeoutError) as error:
            raise WebhooksUnavailable(f"The webhooks service is not answering ({type(error).__name__}); "
                                      "try again shortly") from None
        reply = decoder.decode(data)
        if reply.error is not None:
            raise Refused(reply.error)
        return reply

    async def deliveries(self, organization_id: str, endpoint_id: str, *, delivery_id: str | None = None,
                         since: datetime | None = None, status: str | None = None, limit: int = 50,
                         before: int | None = None) -> wh.DeliveriesReply:
        endpoint = await self.get(organization_id, endpoint_id)
        request = wh.DeliveriesRequest(organization_id=organization_id, endpoint_id=endpoint.id,
                                       delivery_id=delivery_id, since=since, status=status, limit=limit,
                                       before=before)
        reply: wh.DeliveriesReply = await self._ask(WEBHOOK_DELIVERIES, request, codecs.webhook_deliveries_reply)
        return reply

    async def replay(self, organization_id: str, endpoint_id: str, *, delivery_id: str | None = None,
                     since: datetime | None = None, failed_only: bool = False, actor: str = "") -> list[str]:
        endpoint = await self.get(organization_id, endpoint_id)
        request = wh.ReplayRequest(organization_id=organization_id, endpoint_id=endpoint.id,
                                   endpoint_version=endpoint.version, delivery_id=delivery_id, since=since,
                                   failed_only=failed_only, requested_by=actor)
        reply: wh.ReplayReply = await self._ask(WEBHOOK_REPLAY, request, codecs.webhook_replay_reply)
        return reply.delivery_ids

    async def send_test(self, organization_id: str, endpoint_id: str, event_type: str | None) -> wh.DeliveryView:
        if event_type is not None and event_type not in wh.EVENT_TYPES and event_type != wh.TEST_EVENT_TYPE:
            raise InvalidRequest(f"unknown event type {event_type!r}; known: {sorted(wh.EVENT_TYPES)}")
        endpoint = await self.get(organization_id, endpoint_id)
        request = wh.SendTestRequest(organization_id=organization_id, endpoint_id=endpoint.id,
                                     endpoint_version=endpoint.version, event_type=event_type)
        reply: wh.SendTestReply = await self._ask(WEBHOOK_SEND_TEST, request, codecs.webhook_send_test_reply)
        assert reply.delivery is not None
        return reply.delivery
