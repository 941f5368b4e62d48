"""The Daytona-compatible REST API under `/api`: decode, call a use case, encode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from corral_contracts import sandbox as ev
from corral_web import decode_json, error_response, json_errors, reply

from ..app import listing
from ..app.directory import SandboxDirectory
from ..app.sandboxes import SandboxService
from ..domain.errors import DomainError, InvalidRequest
from ..domain.identity import hash_key
from . import dto
from .openapi import openapi_document
from .realtime import PATH as REALTIME_PATH
from .request_context import ACTOR, ORGANIZATION, event_meta, organization
from .snapshot_routes import SNAPSHOT_ROUTES, SnapshotEdge
from .volume_routes import VOLUME_ROUTES
from .routes import Query, Route

SERVICE = web.AppKey("service", SandboxService)
DIRECTORY = web.AppKey("directory", SandboxDirectory)
TOOLBOX_URL = web.AppKey("toolbox_url", str)
OPENAPI = web.AppKey("openapi", bytes)
STATUS = web.AppKey("status", Callable[[], dict[str, int]])

_encode = msgspec.json.encode


def sandbox_reply(request: web.Request, sandbox: Any) -> web.Response:
    service = request.app[SERVICE]
    return reply(dto.sandbox_dto(sandbox, request.app[TOOLBOX_URL], service.last_activity(sandbox)))


# --- handlers -------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "runners": len(await request.app[SERVICE].runners()),
                              **request.app[STATUS]()})


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
    force = request.query.get("force", "false").lower()
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
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", health, "Liveness", public=True),
    Route("GET", "/api/openapi.json", openapi, "This OpenAPI document", public=True),
    Route("GET", "/api/config", config, "Platform configuration"),
    Route("POST", "/api/sandbox", create_sandbox, "Create a sandbox; answers once it is started or after a bounded wait",
          body=dto.CreateSandboxBody, response=dto.SandboxDto),
    Route("GET", "/api/sandbox", list_sandboxes,
          "List sandboxes: filters, sort (newest first by default) and keyset cursor pages",
          response=dto.ListSandboxesDto, query=tuple(Query(*p) for p in listing.PARAMETERS)),
    Route("GET", ID, get_sandbox, "Get a sandbox by id or name", response=dto.SandboxDto),
    Route("DELETE", ID, delete_sandbox, "Destroy a sandbox", response=dto.SandboxDto),
    Route("POST", ID + "/start", start_sandbox, "Start a stopped sandbox", response=dto.SandboxDto),
    Route("POST", ID + "/stop", stop_sandbox, "Stop a sandbox", response=dto.SandboxDto,
          query=(Query("force", {"type": "boolean"}),)),
    Route("POST", ID + "/archive", archive_sandbox, "Archive a stopped sandbox: its filesystem is kept, its container freed",
          response=dto.SandboxDto),
    Route("POST", ID + "/recover", recover_sandbox, "Bring a recoverable sandbox out of error", response=dto.SandboxDto),
    Route("POST", ID + "/resize", resize_sandbox, "Change CPU and memory (started or stopped)", body=dto.ResizeBody,
          response=dto.SandboxDto),
    Route("POST", ID + "/autostop/{minutes}", set_autostop, "Auto-stop after this many idle minutes (0 = never)",
          response=dto.SandboxDto),
    Route("POST", ID + "/autoarchive/{minutes}", set_autoarchive,
          "Auto-archive after this many minutes stopped (0 = the maximum, 30 days)", response=dto.SandboxDto),
    Route("POST", ID + "/autodelete/{minutes}", set_autodelete,
          "Auto-delete after this many minutes stopped (0 = on stop, negative = never)", response=dto.SandboxDto),
    Route("POST", ID + "/last-activity", last_activity, "Keep-alive: refresh the sandbox's last activity", status=201),
    Route("PUT", ID + "/labels", replace_labels, "Replace all labels", body=dto.LabelsBody, response=dto.LabelsDto),
    Route("GET", ID + "/toolbox-proxy-url", toolbox_proxy_url, "Toolbox base URL", response=dto.ToolboxUrlDto),
    Route("GET", ID + "/events", sandbox_events, "The sandbox's full event timeline", response=dto.EventsDto),
    Route("GET", ID + "/signing-key", signing_key,
          "The key of the sandbox's signed file URLs (a JSON string; issued on first request)", response=str),
    Route("POST", ID + "/signing-key/rotate", rotate_signing_key,
          "Replace the signing key: URLs signed with the previous key stop working", response=str),
)


ALL_ROUTES: tuple[Route, ...] = (*ROUTES, *SNAPSHOT_ROUTES, *VOLUME_ROUTES)
"""Every route of the api (the OpenAPI document lists these)."""


def authenticate(directory: SandboxDirectory, public_paths: frozenset[str]):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path in public_paths or not request.path.startswith("/api/") or request.path == REALTIME_PATH:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        entry = directory.api_keys.get(hash_key(token.strip())) if scheme.lower() == "bearer" and token else None
        if entry is None or entry.revoked:
            return error_response(401, "Invalid or missing API key", "UNAUTHORIZED")
        request[ORGANIZATION] = entry.organization_id
        request[ACTOR] = entry.prefix
        return await handler(request)

    return middleware


def create_app(service: SandboxService, directory: SandboxDirectory, toolbox_proxy_url: str,
               status: Callable[[], dict[str, int]] = dict, snapshots: SnapshotEdge | None = None) -> web.Application:
    routes = ALL_ROUTES if snapshots is not None else ROUTES
    public = frozenset(r.path for r in routes if r.public)
    app = web.Application(middlewares=[json_errors(DomainError), authenticate(directory, public)], client_max_size=8 * 1024**2)
    app[SERVICE] = service
    app[DIRECTORY] = directory
    app[TOOLBOX_URL] = toolbox_proxy_url
    app[STATUS] = status
    app[OPENAPI] = _encode(openapi_document(routes))
    if snapshots is not None:
        snapshots.install(app)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
    return app
