"""The Daytona-compatible REST API under `/api`: decode, call a use case, encode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from corral_contracts import sandbox as ev
from corral_web import decode_json, json_errors, reply

from ..app import listing
from ..app.audit import AuditWriter
from ..app.directory import SandboxDirectory
from ..app.identity import IdentityService
from ..app.sandboxes import SandboxService
from ..app.webhook_endpoints import WebhookService
from ..domain.errors import DomainError, InvalidRequest
from ..domain.guard import parse_allow_list
from ..domain.identity import AUTHENTICATED, WRITE_SANDBOXES
from . import dto, preview_routes, ssh_routes, tenancy
from .access import ROUTE_TABLE, AccessPolicy, access, rate_headers
from .auditing import auditing
from .openapi import openapi_document
from .request_context import SERVICE, TOOLBOX_URL, event_meta, organization, sandbox_reply
from .snapshot_routes import SNAPSHOT_ROUTES, SnapshotEdge
from .volume_routes import VOLUME_ROUTES
from .routes import Query, Route
from .webhooks_http import WEBHOOK_ROUTES, WEBHOOKS

DIRECTORY = web.AppKey("directory", SandboxDirectory)
OPENAPI = web.AppKey("openapi", bytes)
STATUS = web.AppKey("status", Callable[[], dict[str, int]])

_encode = msgspec.json.encode


# --- handlers -------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    runners = await request.app[SERVICE].runners()
    return web.json_response({"status": "ok", "runners": len(runners),
                              "diskLimits": _enforced([r.disk_limits for r in runners]),
                              "networkPolicy": _enforced([r.network_policy for r in runners]),
                              **request.app[STATUS]()})


def _enforced(flags: list[bool]) -> str:
    """`enforced` when every live runner enforces it, `not enforced` when none does, else `partial`."""
    if flags and all(flags):
        return "enforced"
    return "partial" if any(flags) else "not enforced"



async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def config(request: web.Request) -> web.Response:
    return web.json_response({"proxyToolboxUrl": request.app[TOOLBOX_URL], "defaultSnapshot": "corral-default"})


async def create_sandbox(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.CreateSandboxBody)
    sandbox = await request.app[SERVICE].create(organization(request), body.to_request(), event_meta(request))
    return sandbox_reply(request, sandbox)


async def get_sandbox(request: web.Request) -> web.Response:
    return sandbox_reply(request, await request.app[SERVICE].get(organization(request), request.match_info["id"]))


async def list_sandboxes(request: web.Request) -> web.Response:
    query = listing.parse_query(request.query.items())
    page = request.app[SERVICE].list(organization(request), query)
    url = request.app[TOOLBOX_URL]
    return reply(dto.ListSandboxesDto(items=[dto.sandbox_dto(s, url) for s in page.items],
                                      next_cursor=page.next_cursor))


async def start_sandbox(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return sandbox_reply(request, await service.start(organization(request), request.match_info["id"],
                                                       event_meta(request)))


async def stop_sandbox(request: web.Request) -> web.Response:
    force = request.query.get("force", "").lower() or "false"
    if force not in ("true", "false"):
        raise InvalidRequest("force must be true or false")
    service = request.app[SERVICE]
    return sandbox_reply(request, await service.stop(organization(request), request.match_info["id"], force == "true",
                                                      event_meta(request)))


async def delete_sandbox(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return sandbox_reply(request, await service.destroy(organization(request), request.match_info["id"],
                                                         event_meta(request)))


async def replace_labels(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.LabelsBody)
    sandbox = await request.app[SERVICE].replace_labels(organization(request), request.match_info["id"], body.labels,
                                                        event_meta(request))
    return reply(dto.LabelsDto(labels=sandbox.labels))


async def archive_sandbox(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return sandbox_reply(request, await service.archive(organization(request), request.match_info["id"],
                                                         event_meta(request)))


async def recover_sandbox(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return sandbox_reply(request, await service.recover(organization(request), request.match_info["id"],
                                                         event_meta(request)))


async def resize_sandbox(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.ResizeBody)
    if body.disk is not None:
        sandbox = await request.app[SERVICE].get(organization(request), request.match_info["id"])
        if body.disk != sandbox.disk:
            raise InvalidRequest("Disk cannot be resized on this runner (no XFS project quotas); cpu and memory can")
    service = request.app[SERVICE]
    return sandbox_reply(request, await service.resize(organization(request), request.match_info["id"], body.cpu,
                                                        body.memory, event_meta(request)))


async def network_settings(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.NetworkSettingsBody)
    service = request.app[SERVICE]
    await service.get(organization(request), request.match_info["id"])  # an unknown sandbox is a 404 first
    if body.network_block_all is None and body.network_allow_list is None:
        raise InvalidRequest("give networkBlockAll, networkAllowList or both")
    allow_list = None if body.network_allow_list is None else parse_allow_list(body.network_allow_list)
    return sandbox_reply(request, await service.network_settings(
        organization(request), request.match_info["id"], body.network_block_all, allow_list, event_meta(request)))


def _minutes(request: web.Request) -> int:
    try:
        return int(request.match_info["minutes"])
    except ValueError:
        raise InvalidRequest("the interval must be a whole number of minutes") from None


async def set_autostop(request: web.Request) -> web.Response:
    return sandbox_reply(request, await request.app[SERVICE].set_timers(
        organization(request), request.match_info["id"], event_meta(request), auto_stop=_minutes(request)))


async def set_autoarchive(request: web.Request) -> web.Response:
    return sandbox_reply(request, await request.app[SERVICE].set_timers(
        organization(request), request.match_info["id"], event_meta(request), auto_archive=_minutes(request)))


async def set_autodelete(request: web.Request) -> web.Response:
    return sandbox_reply(request, await request.app[SERVICE].set_timers(
        organization(request), request.match_info["id"], event_meta(request), auto_delete=_minutes(request)))


async def last_activity(request: web.Request) -> web.Response:
    await request.app[SERVICE].touch(organization(request), request.match_info["id"])
    return web.Response(status=201)


async def toolbox_proxy_url(request: web.Request) -> web.Response:
    await request.app[SERVICE].get(organization(request), request.match_info["id"])
    return reply(dto.ToolboxUrlDto(url=request.app[TOOLBOX_URL]))


async def sandbox_events(request: web.Request) -> web.Response:
    history = await request.app[SERVICE].history(organization(request), request.match_info["id"])
    items = [
        dto.EventDto(version=e.originator_version, type=type(e.payload).__name__, occurred_at=dto.iso(e.timestamp),
                     data=_event_data(e.payload), meta=e.meta)
        for e in history
    ]
    return reply(dto.EventsDto(items=items))


def _event_data(payload: Any) -> dict[str, Any]:
    """An event for the timeline; secrets (the signing key) stay out of it."""
    data: dict[str, Any] = msgspec.to_builtins(payload)
    if isinstance(payload, ev.SandboxSigningKeyRotated):
        data["signing_key"] = "(redacted)"
    return data


async def signing_key(request: web.Request) -> web.Response:
    key = await request.app[SERVICE].signing_key(organization(request), request.match_info["id"], event_meta(request))
    return reply(key)


async def rotate_signing_key(request: web.Request) -> web.Response:
    key = await request.app[SERVICE].rotate_signing_key(organization(request), request.match_info["id"],
                                                        event_meta(request))
    return reply(key)


ID = "/api/sandbox/{id}"
WRITE, DELETE, LIFECYCLE = WRITE_SANDBOXES, "delete:sandboxes", "sandbox-lifecycle"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", health, "Liveness", public=True),
    Route("GET", "/api/openapi.json", openapi, "This OpenAPI document", public=True),
    Route("GET", "/api/config", config, "Platform configuration", permission=AUTHENTICATED),
    Route("POST", "/api/sandbox", create_sandbox, "Create a sandbox; answers once it is started or after a bounded wait",
          body=dto.CreateSandboxBody, response=dto.SandboxDto, permission=WRITE, rate="sandbox-create", errors=(404, 503)),
    Route("GET", "/api/sandbox", list_sandboxes,
          "List sandboxes: filters, sort (newest first by default) and keyset cursor pages",
          response=dto.ListSandboxesDto, query=tuple(Query(*p) for p in listing.PARAMETERS), permission=AUTHENTICATED),
    Route("GET", ID, get_sandbox, "Get a sandbox by id or name", response=dto.SandboxDto, permission=AUTHENTICATED),
    Route("DELETE", ID, delete_sandbox, "Destroy a sandbox", response=dto.SandboxDto, permission=DELETE,
          rate=LIFECYCLE),
    Route("POST", ID + "/start", start_sandbox, "Start a stopped sandbox", response=dto.SandboxDto, permission=WRITE,
          rate=LIFECYCLE),
    Route("POST", ID + "/stop", stop_sandbox, "Stop a sandbox", response=dto.SandboxDto,
          query=(Query("force", {"type": "boolean"}),), permission=WRITE, rate=LIFECYCLE),
    Route("POST", ID + "/archive", archive_sandbox, "Archive a stopped sandbox: its filesystem is kept, its container freed",
          response=dto.SandboxDto, permission=WRITE, rate=LIFECYCLE),
    Route("POST", ID + "/recover", recover_sandbox, "Bring a recoverable sandbox out of error", response=dto.SandboxDto,
          permission=WRITE, rate=LIFECYCLE),
    Route("POST", ID + "/resize", resize_sandbox, "Change CPU and memory (started or stopped)", body=dto.ResizeBody,
          response=dto.SandboxDto, permission=WRITE, rate=LIFECYCLE),
    Route("POST", ID + "/autostop/{minutes}", set_autostop, "Auto-stop after this many idle minutes (0 = never)",
          response=dto.SandboxDto, permission=WRITE, action="set_auto_stop_interval"),
    Route("POST", ID + "/autoarchive/{minutes}", set_autoarchive,
          "Auto-archive after this many minutes stopped (0 = the maximum, 30 days)", response=dto.SandboxDto,
          permission=WRITE, action="set_auto_archive_interval"),
    Route("POST", ID + "/autodelete/{minutes}", set_autodelete,
          "Auto-delete after this many minutes stopped (0 = on stop, negative = never)", response=dto.SandboxDto,
          permission=WRITE, action="set_auto_delete_interval"),
    Route("POST", ID + "/last-activity", last_activity, "Keep-alive: refresh the sandbox's last activity", status=201,
          permission=WRITE, action="update_last_activity"),
    Route("POST", ID + "/network-settings", network_settings,
          "Change networkBlockAll and/or networkAllowList live; answers once the runner enforces it",
          body=dto.NetworkSettingsBody, response=dto.SandboxDto, permission=WRITE, action="update_network_settings"),
    Route("PUT", ID + "/labels", replace_labels, "Replace all labels", body=dto.LabelsBody, response=dto.LabelsDto,
          permission=WRITE, action="replace_labels"),
    Route("GET", ID + "/toolbox-proxy-url", toolbox_proxy_url, "Toolbox base URL", response=dto.ToolboxUrlDto,
          permission=AUTHENTICATED),
    Route("GET", ID + "/events", sandbox_events, "The sandbox's full event timeline", response=dto.EventsDto,
          permission=AUTHENTICATED),
    Route("GET", ID + "/signing-key", signing_key,
          "The key of the sandbox's signed file URLs (a JSON string; issued on first request)", response=str,
          permission=WRITE, action="read_signing_key"),
    Route("POST", ID + "/signing-key/rotate", rotate_signing_key,
          "Replace the signing key: URLs signed with the previous key stop working", response=str, permission=WRITE,
          action="rotate_signing_key"),
) + tenancy.ROUTES + preview_routes.ROUTES + ssh_routes.ROUTES + SNAPSHOT_ROUTES + VOLUME_ROUTES
ROUTES += WEBHOOK_ROUTES


def create_app(service: SandboxService, directory: SandboxDirectory, toolbox_proxy_url: str,
               status: Callable[[], dict[str, int]] = dict, *, identity: IdentityService, policy: AccessPolicy,
               audit: AuditWriter | None, webhooks: WebhookService | None = None,
               ssh_access: ssh_routes.SshAccessService | None = None,
               snapshots: SnapshotEdge | None = None) -> web.Application:
    middlewares = [json_errors(DomainError), access(policy)]
    if audit is not None:
        middlewares.insert(0, auditing(audit))
    app = web.Application(middlewares=middlewares, client_max_size=8 * 1024**2)
    app[SERVICE] = service
    app[DIRECTORY] = directory
    app[TOOLBOX_URL] = toolbox_proxy_url
    app[STATUS] = status
    if webhooks is not None:
        app[WEBHOOKS] = webhooks
    if ssh_access is not None:
        app[ssh_routes.SSH_ACCESS] = ssh_access
    if snapshots is not None:
        snapshots.install(app)
    app[OPENAPI] = _encode(openapi_document(ROUTES))
    app[tenancy.IDENTITY] = identity
    app[tenancy.USAGE] = directory.usage
    app[tenancy.AUDIT_TRAIL] = directory.audit
    app[tenancy.CATCH_UP] = directory.catch_up
    table = {}
    for route in ROUTES:
        table[app.router.add_route(route.method, route.path, route.handler)] = route
    app[ROUTE_TABLE] = table
    app.on_response_prepare.append(rate_headers)
    return app
