"""The WebhookEndpoint aggregate: where an organization wants its events delivered, and how they are
signed. State folded from its events; pure decisions that return new events (no I/O: the address checks
of a URL happen in the use case, secrets are drawn by the caller)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import msgspec

from corral_contracts import webhooks as wh
from corral_web.outbound import split_url

from .errors import InvalidRequest, InvalidState

MAX_DESCRIPTION = 512
MAX_EVENT_TYPES = 50
SECRET_PREFIX = "whsec_"
PREVIOUS_SECRET_GRACE = 24 * 3600
"""Seconds the previous secret keeps signing after a rotation, by default (as Svix)."""
MAX_PREVIOUS_SECRET_GRACE = 7 * 24 * 3600


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    organization_id: str
    url: str
    secret: str
    description: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_reason: str | None = None
    """Why the platform disabled it (kept failing); None when enabled or disabled by its owner."""
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    deleted: bool = False
    previous_secret: str = ""
    """The secret before the last rotation, still signing (beside `secret`) until `previous_expires_at`."""
    previous_expires_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one in its grace."""
        keep = self.previous_secret and self.previous_expires_at is not None and now < self.previous_expires_at
        return [self.secret, self.previous_secret] if keep else [self.secret]


def secret_from(key: bytes) -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of the signing key."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def evolve(endpoint: WebhookEndpoint | None, event: Any, version: int, at: datetime) -> WebhookEndpoint | None:
    if isinstance(event, wh.WebhookEndpointCreated):
        return WebhookEndpoint(id=event.endpoint_id, version=version, organization_id=event.organization_id,
                               url=event.url, secret=event.secret, description=event.description,
                               event_types=list(event.event_types), enabled=event.enabled, created_at=at,
                               updated_at=at)
    if endpoint is None:
        return None
    change: dict[str, Any] = {"version": version, "updated_at": at}
    match event:
        case wh.WebhookEndpointUpdated():
            for name in ("url", "description", "event_types", "enabled"):
                if getattr(event, name) is not None:
                    change[name] = getattr(event, name)
            if event.enabled:
                change |= {"disabled_reason": None, "disabled_at": None, "failing_since": None}
        case wh.WebhookEndpointSecretRotated(secret=secret, previous_expires_at=until):
            change |= {"secret": secret, "previous_secret": endpoint.secret if until else "",
                       "previous_expires_at": until}
        case wh.WebhookEndpointDisabled(reason=reason, failing_since=since):
            change |= {"enabled": False, "disabled_reason": reason, "disabled_at": at, "failing_since": since}
        case wh.WebhookEndpointDeleted():
            change |= {"deleted": True, "enabled": False}
        case _:
            return endpoint
    return msgspec.structs.replace(endpoint, **change)


# --- decisions ---------------------------------------------------------------------------------


def check_url(url: str) -> str:
    try:
        split_url(url)
    except ValueError as error:
        raise InvalidRequest(f"url: {error}") from None
    return url


def check_event_types(event_types: list[str]) -> list[str]:
    unknown = [t for t in event_types if t not in wh.EVENT_TYPES]
    if unknown:
        raise InvalidRequest(f"unknown event types {unknown}; known: {sorted(wh.EVENT_TYPES)}")
    if len(event_types) > MAX_EVENT_TYPES:
        raise InvalidRequest(f"at most {MAX_EVENT_TYPES} event types")
    return list(dict.fromkeys(event_types))


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"description: at most {MAX_DESCRIPTION} characters")
    return description


def create(endpoint_id: str, organization_id: str, *, url: str, secret: str, description: str = "",
           event_types: list[str] | None = None, enabled: bool = True) -> list[Any]:
    return [wh.WebhookEndpointCreated(endpoint_id=endpoint_id, organization_id=organization_id, url=check_url(url),
                                      secret=secret, description=check_description(description),
                                      event_types=check_event_types(event_types or []), enabled=enabled)]


def update(endpoint: WebhookEndpoint, *, url: str | None = None, description: str | None = None,
           event_types: list[str] | None = None, enabled: bool | None = None) -> list[Any]:
    _check_live(endpoint)
    changed = wh.WebhookEndpointUpdated(
        endpoint_id=endpoint.id, organization_id=endpoint.organization_id,
        url=None if url is None or url == endpoint.url else check_url(url),
        description=None if description is None or description == endpoint.description
        else check_description(description),
        event_types=None if event_types is None or check_event_types(event_types) == endpoint.event_types
        else check_event_types(event_types),
        enabled=None if enabled is None or enabled == endpoint.enabled else enabled,
    )
    if all(getattr(changed, name) is None for name in ("url", "description", "event_types", "enabled")):
        return []
    return [changed]


def rotate_secret(endpoint: WebhookEndpoint, candidate: str, now: datetime,
                  keep_previous: float = PREVIOUS_SECRET_GRACE) -> list[Any]:
    """A new secret; the current one keeps signing beside it for `keep_previous` seconds (0: stops now)."""
    _check_live(endpoint)
    if not 0 <= keep_previous <= MAX_PREVIOUS_SECRET_GRACE:
        raise InvalidRequest(f"previousSecretValidFor: 0 to {MAX_PREVIOUS_SECRET_GRACE} seconds")
    until = now + timedelta(seconds=keep_previous) if keep_previous else None
    return [wh.WebhookEndpointSecretRotated(endpoint_id=endpoint.id, organization_id=endpoint.organization_id,
                                            secret=candidate, previous_expires_at=until)]


def disable(endpoint: WebhookEndpoint, *, judged_version: int, reason: str, failing_since: datetime) -> list[Any]:
    """The platform disables an endpoint that kept failing, unless it changed since it was judged (its
    owner re-enabled it or gave it a new URL meanwhile) or is disabled already."""
    if endpoint.deleted or not endpoint.enabled or endpoint.version != judged_version:
        return []
    return [wh.WebhookEndpointDisabled(endpoint_id=endpoint.id, organization_id=endpoint.organization_id,
                                       reason=reason, failing_since=failing_since)]


def delete(endpoint: WebhookEndpoint) -> list[Any]:
    _check_live(endpoint)
    return [wh.WebhookEndpointDeleted(endpoint_id=endpoint.id, organization_id=endpoint.organization_id)]


def _check_live(endpoint: WebhookEndpoint) -> None:
    if endpoint.deleted:
        raise InvalidState(f"Webhook endpoint {endpoint.id} is deleted")
