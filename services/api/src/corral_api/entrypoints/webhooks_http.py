"""REST for webhooks under `/api/webhooks`: endpoints of the caller's organization (another organization's
endpoint is a 404), their signing secrets, test sends, the delivery log and replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from corral_contracts import webhooks as wh
from corral_web import decode_json, reply

from ..app.webhook_endpoints import WebhookService
from ..domain.errors import InvalidRequest, InvalidState, NotFound
from ..domain.identity import AUTHENTICATED
from ..domain.webhook_endpoint import WebhookEndpoint
from .dto import iso
from .request_context import ACTOR, event_meta, organization
from .routes import Query, Route

WEBHOOKS = web.AppKey("webhooks", WebhookService)

# --- wire shapes ----------------------------------------------------------------------------------


class CreateEndpointBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    url: str
    description: str = ""
    event_types: list[str] = []
    """Empty: every event type."""
    enabled: bool = True


class UpdateEndpointBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Fields given are changed. `enabled: true` also re-enables an endpoint the platform disabled."""

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


class EndpointSummaryDto(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    organization_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    """Why the platform disabled the endpoint (it kept failing); null otherwise."""
    disabled_at: str | None
    failing_since: str | None
    created_at: str
    updated_at: str


class EndpointDto(EndpointSummaryDto, kw_only=True):
    secret: str
    """Standard Webhooks signing secret (`whsec_…`): verify the `webhook-signature` header with it."""
    previous_secret_expires_at: str | None
    """After a rotation, deliveries are also signed with the previous secret until then."""


class RotateBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    previous_secret_valid_for: float = 24 * 3600
    """Seconds the previous secret keeps signing beside the new one (0: it stops at once, e.g. if it leaked)."""


class EndpointListDto(msgspec.Struct, kw_only=True):
    items: list[EndpointSummaryDto]


class AttemptDto(msgspec.Struct, rename="camel", kw_only=True):
    attempt: int
    url: str
    at: str
    succeeded: bool
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str


class DeliveryDto(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    """The `webhook-id` header, the same on every attempt and replay."""
    endpoint_id: str
    event_type: str
    event_id: str
    status: str
    """`pending`, `succeeded` or `failed`."""
    test: bool
    created_at: str
    next_attempt_at: str | None
    failure: str
    payload: Any
    attempts: list[AttemptDto]


class DeliveriesDto(msgspec.Struct, rename="camel", kw_only=True):
    items: list[DeliveryDto]
    next_cursor: str | None


class ReplayBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    since: datetime
    """Every delivery created at or after this time (ISO 8601 with a time zone) is sent again."""
    failed_only: bool = False


class ReplayDto(msgspec.Struct, rename="camel", kw_only=True):
    replayed: int
    delivery_ids: list[str]


class TestBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    event_type: str | None = None
    """An example event of this type (marked `"test": true`); a `webhook.test` event when omitted."""


class EventTypeDto(msgspec.Struct, kw_only=True):
    name: str
    description: str


class EventTypesDto(msgspec.Struct, kw_only=True):
    items: list[EventTypeDto]


def _opt(value: datetime | None) -> str | None:
    return iso(value) if value else None


def summary_dto(e: WebhookEndpoint) -> EndpointSummaryDto:
    return EndpointSummaryDto(id=e.id, organization_id=e.organization_id, url=e.url, description=e.description,
                              event_types=e.event_types, enabled=e.enabled, disabled_reason=e.disabled_reason,
                              disabled_at=_opt(e.disabled_at), failing_since=_opt(e.failing_since),
                              created_at=iso(e.created_at), updated_at=iso(e.updated_at))


def endpoint_dto(e: WebhookEndpoint) -> EndpointDto:
    return EndpointDto(**msgspec.structs.asdict(summary_dto(e)), secret=e.secret,
                       previous_secret_expires_at=_opt(e.previous_expires_at) if e.previous_secret else None)


def delivery_dto(d: wh.DeliveryView) -> DeliveryDto:
    try:
        payload = msgspec.json.decode(d.body)
    except msgspec.DecodeError:
        payload = d.body
    return DeliveryDto(
        id=d.delivery_id, endpoint_id=d.endpoint_id, event_type=d.event_type, event_id=d.event_id, status=d.status,
        test=d.test, created_at=iso(d.created_at), next_attempt_at=_opt(d.next_attempt_at), failure=d.failure,
        payload=payload,
        attempts=[AttemptDto(attempt=a.attempt, url=a.url, at=iso(a.at), succeeded=a.succeeded,
                             status_code=a.status_code, latency_ms=round(a.latency_ms, 3), response_excerpt=a.response,
                             error=a.error) for a in d.attempts],
    )


# --- handlers -------------------------------------------------------------------------------------


def _org(request: web.Request) -> str:
    return organization(request)


def _meta(request: web.Request) -> dict[str, str]:
    return event_meta(request)


def _actor(request: web.Request) -> str:
    return request.get(ACTOR, "")


def _id(request: web.Request) -> str:
    return request.match_info["endpoint_id"]


async def list_event_types(request: web.Request) -> web.Response:
    return reply(EventTypesDto(items=[EventTypeDto(name=n, description=d) for n, d in wh.EVENT_TYPES.items()]))


async def create_endpoint(request: web.Request) -> web.Response:
    body = await decode_json(request, CreateEndpointBody, empty_ok=False)
    endpoint = await request.app[WEBHOOKS].create(_org(request), url=body.url, description=body.description,
                                                  event_types=body.event_types, enabled=body.enabled,
                                                  meta=_meta(request))
    return reply(endpoint_dto(endpoint))


async def list_endpoints(request: web.Request) -> web.Response:
    return reply(EndpointListDto(items=[summary_dto(e) for e in request.app[WEBHOOKS].list(_org(request))]))


async def get_endpoint(request: web.Request) -> web.Response:
    return reply(endpoint_dto(await request.app[WEBHOOKS].get(_org(request), _id(request))))


async def update_endpoint(request: web.Request) -> web.Response:
    body = await decode_json(request, UpdateEndpointBody, empty_ok=False)
    endpoint = await request.app[WEBHOOKS].update(_org(request), _id(request), url=body.url,
                                                  description=body.description, event_types=body.event_types,
                                                  enabled=body.enabled, meta=_meta(request))
    return reply(endpoint_dto(endpoint))


async def delete_endpoint(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete(_org(request), _id(request), _meta(request))
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    body = await decode_json(request, RotateBody)
    endpoint = await request.app[WEBHOOKS].rotate_secret(_org(request), _id(request), _meta(request),
                                                         body.previous_secret_valid_for)
    return reply(endpoint_dto(endpoint))


async def _require_enabled(request: web.Request) -> None:
    endpoint = await request.app[WEBHOOKS].get(_org(request), _id(request))
    if not endpoint.enabled:
        raise InvalidState(f"Webhook endpoint {endpoint.id} is disabled; enable it first")


async def send_test(request: web.Request) -> web.Response:
    body = await decode_json(request, TestBody)
    await _require_enabled(request)
    delivery = await request.app[WEBHOOKS].send_test(_org(request), _id(request), body.event_type)
    return reply(delivery_dto(delivery))


def _query_time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidRequest(f"{name} must have a time zone (e.g. 2026-01-01T00:00:00Z)")
    return value


def _query_int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}")
    return value


STATUSES = ("pending", "succeeded", "failed")


async def list_deliveries(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {list(STATUSES)}")
    page = await request.app[WEBHOOKS].deliveries(
        _org(request), _id(request), since=_query_time(request, "since"), status=status,
        limit=_query_int(request, "limit", 50, 1, 200) or 50,
        before=_query_int(request, "cursor", None, 1, 2**62))
    return reply(DeliveriesDto(items=[delivery_dto(d) for d in page.items],
                               next_cursor=str(page.next_cursor) if page.next_cursor else None))


async def get_delivery(request: web.Request) -> web.Response:
    page = await request.app[WEBHOOKS].deliveries(_org(request), _id(request),
                                                  delivery_id=request.match_info["delivery_id"])
    if not page.items:
        raise NotFound(f"Delivery {request.match_info['delivery_id']} not found")
    return reply(delivery_dto(page.items[0]))


async def replay_delivery(request: web.Request) -> web.Response:
    await _require_enabled(request)
    ids = await request.app[WEBHOOKS].replay(_org(request), _id(request), delivery_id=request.match_info["delivery_id"],
                                             actor=_actor(request))
    return reply(ReplayDto(replayed=len(ids), delivery_ids=ids))


async def replay_since(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].get(_org(request), _id(request))  # an unknown endpoint is a 404 first
    body = await decode_json(request, ReplayBody, empty_ok=False)
    if body.since.tzinfo is None:
        raise InvalidRequest("since must have a time zone (e.g. 2026-01-01T00:00:00Z)")
    await _require_enabled(request)
    ids = await request.app[WEBHOOKS].replay(_org(request), _id(request), since=body.since,
                                             failed_only=body.failed_only, actor=_actor(request))
    return reply(ReplayDto(replayed=len(ids), delivery_ids=ids))


MANAGE = "write:webhooks"
"""Managing endpoints shows their secrets and sends to them: Corral's own permission scope."""
BASE = "/api/webhooks/endpoints"
ONE = BASE + "/{endpoint_id}"
WEBHOOK_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/webhooks/event-types", list_event_types, "Webhook event types an endpoint can subscribe to",
          response=EventTypesDto, permission=AUTHENTICATED),
    Route("POST", BASE, create_endpoint, "Subscribe an HTTP endpoint to events; answers with its signing secret",
          body=CreateEndpointBody, response=EndpointDto, permission=MANAGE),
    Route("GET", BASE, list_endpoints, "The organization's webhook endpoints (without secrets)",
          response=EndpointListDto, permission=AUTHENTICATED),
    Route("GET", ONE, get_endpoint, "One webhook endpoint, with its signing secret", response=EndpointDto,
          permission=MANAGE),
    Route("PATCH", ONE, update_endpoint, "Change the URL, description, event types or enabled; enabling again "
          "clears an automatic disable", body=UpdateEndpointBody, response=EndpointDto, permission=MANAGE),
    Route("DELETE", ONE, delete_endpoint, "Delete a webhook endpoint: nothing more is delivered to it", status=204,
          permission=MANAGE),
    Route("POST", ONE + "/secret/rotate", rotate_secret,
          "A new signing secret; deliveries are signed with it, and with the previous one for a grace period "
          "(24 h by default) so receivers switch without missing one", body=RotateBody, response=EndpointDto, permission=MANAGE,
          action="rotate_webhook_secret"),
    Route("POST", ONE + "/test", send_test, "Send a test event to the endpoint (delivered, logged and retried "
          "like any other)", body=TestBody, response=DeliveryDto, permission=MANAGE, action="send_test_webhook"),
    Route("GET", ONE + "/deliveries", list_deliveries,
          "The endpoint's delivery log, newest first, with every attempt (time, status, latency, response excerpt)",
          response=DeliveriesDto,
          query=(Query("since", {"type": "string", "format": "date-time"}, "deliveries created at or after"),
                 Query("status", {"type": "string", "enum": list(STATUSES)}),
                 Query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                 Query("cursor", {"type": "string"}, "nextCursor of the previous page")),
          permission=AUTHENTICATED),
    Route("GET", ONE + "/deliveries/{delivery_id}", get_delivery, "One delivery with its attempts",
          response=DeliveryDto, permission=AUTHENTICATED),
    Route("POST", ONE + "/deliveries/{delivery_id}/replay", replay_delivery,
          "Send one delivery again (same webhook-id), with a fresh retry schedule", response=ReplayDto,
          permission=MANAGE, action="replay_webhook_delivery"),
    Route("POST", ONE + "/replay", replay_since, "Send again every delivery created since a time (or only the "
          "failed ones)", body=ReplayBody, response=ReplayDto, permission=MANAGE,
          action="replay_webhook_deliveries"),
)
