"""REST routes of organizations, API keys and the audit log (their own route table, joined to the
api's ROUTES)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from corral_web import decode_json, reply

from ..app.audit import ALL, AuditTrail
from ..app.identity import IdentityService
from ..app.quotas import UsageView
from ..domain import audit as audit_rules
from ..domain.errors import NotFound
from ..domain.identity import AUTHENTICATED, OPERATOR
from . import tenancy_dto as dto
from .access import CALLER
from .dto import iso
from .routes import Query, Route

IDENTITY = web.AppKey("identity", IdentityService)
USAGE = web.AppKey("usage", UsageView)
AUDIT_TRAIL = web.AppKey("audit_trail", AuditTrail)
CATCH_UP = web.AppKey("catch_up", Callable[[], Awaitable[Any]])
"""Folds what is recorded so far: an audit query sees every call answered before it."""


def _meta(request: web.Request) -> dict[str, str]:
    caller = request[CALLER]
    return {"Corral-Actor": caller.prefix, "Corral-Actor-Key": caller.key_id}


def _organization_reply(request: web.Request, org, status: int = 200) -> web.Response:  # type: ignore[no-untyped-def]
    identity = request.app[IDENTITY]
    return reply(dto.organization_dto(org, identity.quota(org.id), request.app[USAGE].totals[org.id]), status)


# --- organizations -----------------------------------------------------------------------------


async def create_organization(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.CreateOrganizationBody, empty_ok=False)
    identity = request.app[IDENTITY]
    org, value, key = await identity.create_organization(request[CALLER], body.name, _meta(request))
    summary = dto.organization_dto(org, identity.quota(org.id), request.app[USAGE].totals[org.id])
    return reply(dto.OrganizationCreatedDto(**msgspec.structs.asdict(summary),
                                            api_key=dto.key_created_dto(value, key)), 201)


async def list_organizations(request: web.Request) -> web.Response:
    identity = request.app[IDENTITY]
    usage = request.app[USAGE].totals
    return reply([dto.organization_dto(o, identity.quota(o.id), usage[o.id])
                  for o in identity.organizations(request[CALLER])])


async def get_organization(request: web.Request) -> web.Response:
    org = request.app[IDENTITY].organization(request[CALLER], request.match_info["organizationId"])
    return _organization_reply(request, org)


async def set_quota(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.QuotaBody, empty_ok=False)
    org = await request.app[IDENTITY].set_quota(request[CALLER], request.match_info["organizationId"], body.changes(),
                                                _meta(request))
    return _organization_reply(request, org)


async def suspend_organization(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.SuspendBody)
    org = await request.app[IDENTITY].suspend(request[CALLER], request.match_info["organizationId"], True, body.reason,
                                              _meta(request))
    return _organization_reply(request, org)


async def unsuspend_organization(request: web.Request) -> web.Response:
    org = await request.app[IDENTITY].suspend(request[CALLER], request.match_info["organizationId"], False, "",
                                              _meta(request))
    return _organization_reply(request, org)


# --- API keys ----------------------------------------------------------------------------------


async def create_api_key(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.CreateApiKeyBody, empty_ok=False)
    value, entry = await request.app[IDENTITY].create_key(request[CALLER], body.name, body.permissions,
                                                          body.expires_at, _meta(request))
    return reply(dto.key_created_dto(value, entry), 201)


async def list_api_keys(request: web.Request) -> web.Response:
    return reply([dto.key_dto(k) for k in request.app[IDENTITY].keys(request[CALLER])])


async def current_api_key(request: web.Request) -> web.Response:
    return reply(dto.key_dto(request[CALLER]))


async def revoke_current_api_key(request: web.Request) -> web.Response:
    caller = request[CALLER]
    await request.app[IDENTITY].revoke_key(caller, caller.name, _meta(request))
    return web.Response(status=204)


async def get_api_key(request: web.Request) -> web.Response:
    return reply(dto.key_dto(request.app[IDENTITY].key(request[CALLER], request.match_info["name"])))


async def delete_api_key(request: web.Request) -> web.Response:
    await request.app[IDENTITY].revoke_key(request[CALLER], request.match_info["name"], _meta(request))
    return web.Response(status=204)


# --- audit -------------------------------------------------------------------------------------


async def _audit_page(request: web.Request, organization_id: str) -> web.Response:
    query = audit_rules.parse_query(request.query.items())
    await request.app[CATCH_UP]()
    caller = request[CALLER]
    if query.organization_id is not None:
        if not caller.operator:
            raise NotFound(f"Organization {query.organization_id} not found")
        organization_id = query.organization_id
    if organization_id == ALL:
        if not caller.operator:
            raise NotFound(f"Organization {organization_id} not found")
    elif organization_id != caller.organization_id:
        request.app[IDENTITY].organization(caller, organization_id)  # 404 unless an operator
    page = request.app[AUDIT_TRAIL].query(organization_id, query)
    items = [dto.AuditLogDto(
        id=e.audit_id, organization_id=e.organization_id, actor_id=e.actor_id, actor_name=e.actor_name,
        actor_api_key_prefix=e.actor_key_prefix, actor_api_key_suffix=e.actor_key_suffix, action=e.action,
        target_type=e.target_type, target_id=e.target_id, status_code=e.status_code,
        error_message=e.error_message or None, ip_address=e.ip_address, user_agent=e.user_agent, source=e.source,
        sdk_version=e.sdk_version, method=e.method, path=e.path, duration_ms=e.duration_ms, metadata=e.metadata,
        created_at=iso(item.at)) for item in page.items for e in (item.event,)]
    return reply(dto.AuditPageDto(items=items, total=page.total, page=page.page, total_pages=page.total_pages,
                                  next_token=page.next_token))


async def audit_logs(request: web.Request) -> web.Response:
    return await _audit_page(request, request[CALLER].organization_id)


async def organization_audit_logs(request: web.Request) -> web.Response:
    return await _audit_page(request, request.match_info["organizationId"])


ORG = "/api/organizations/{organizationId}"
AUDIT_QUERY = tuple(Query(*p) for p in audit_rules.PARAMETERS)
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/organizations", create_organization,
          "Create an organization and its first API key (shown once); platform operators only", status=201,
          body=dto.CreateOrganizationBody, response=dto.OrganizationCreatedDto, permission=OPERATOR),
    Route("GET", "/api/organizations", list_organizations,
          "Organizations the caller may see: its own (operators: all), with quota and usage",
          response=list[dto.OrganizationDto], permission=AUTHENTICATED),
    Route("GET", ORG, get_organization, "One organization, its quota and current usage", response=dto.OrganizationDto,
          permission=AUTHENTICATED),
    Route("PATCH", ORG + "/quota", set_quota,
          "Change an organization's quota and rate limits (null = the platform default); operators only",
          body=dto.QuotaBody, response=dto.OrganizationDto, permission=OPERATOR, action="update_quota"),
    Route("POST", ORG + "/suspend", suspend_organization,
          "Suspend an organization: its keys may only read; operators only", body=dto.SuspendBody,
          response=dto.OrganizationDto, permission=OPERATOR),
    Route("POST", ORG + "/unsuspend", unsuspend_organization, "Lift a suspension; operators only",
          response=dto.OrganizationDto, permission=OPERATOR),
    Route("POST", "/api/api-keys", create_api_key,
          "Create an API key of the caller's organization (value shown once; never more permissions or a later "
          "expiry than the caller's key)", status=201, body=dto.CreateApiKeyBody, response=dto.ApiKeyCreatedDto,
          permission=AUTHENTICATED),
    Route("GET", "/api/api-keys", list_api_keys, "The organization's API keys (values masked)",
          response=list[dto.ApiKeyDto], permission=AUTHENTICATED),
    Route("GET", "/api/api-keys/current", current_api_key, "The calling key", response=dto.ApiKeyDto,
          permission=AUTHENTICATED),
    Route("DELETE", "/api/api-keys/current", revoke_current_api_key, "Revoke the calling key", status=204,
          permission=AUTHENTICATED),
    Route("GET", "/api/api-keys/{name}", get_api_key, "One API key of the organization", response=dto.ApiKeyDto,
          permission=AUTHENTICATED),
    Route("DELETE", "/api/api-keys/{name}", delete_api_key,
          "Revoke an API key (itself, or one that holds no permission the caller lacks)", status=204,
          permission=AUTHENTICATED),
    Route("GET", "/api/audit", audit_logs, "The organization's audit log, newest first, with filters and pages",
          response=dto.AuditPageDto, query=AUDIT_QUERY, permission="read:audit_logs", errors=(404,)),
    Route("GET", "/api/audit/organizations/{organizationId}", organization_audit_logs,
          "An organization's audit log (the caller's own; operators: any)", response=dto.AuditPageDto,
          query=AUDIT_QUERY, permission="read:audit_logs"),
)
