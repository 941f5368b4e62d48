"""The Daytona-compatible REST API under `/api`: decode, call a use case, encode."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
from aiohttp import web

from corral_observability import inject_headers
from corral_web import decode_json, error_response, json_errors, reply

from ..app.directory import SandboxDirectory
from ..app.sandboxes import SandboxService
from ..domain.errors import DomainError, InvalidRequest
from ..domain.identity import hash_key
from . import dto
from .openapi import openapi_document
from .realtime import PATH as REALTIME_PATH
from .routes import Query, Route

SERVICE = web.AppKey("service", SandboxService)
DIRECTORY = web.AppKey("directory", SandboxDirectory)
TOOLBOX_URL = web.AppKey("toolbox_url", str)
OPENAPI = web.AppKey("openapi", bytes)
ORGANIZATION = web.RequestKey("organization_id", str)
ACTOR = web.RequestKey("actor", str)

_encode = msgspec.json.encode


def organization(request: web.Request) -> str:
    return request[ORGANIZATION]


def event_meta(request: web.Request) -> dict[str, str]:
    meta = inject_headers({})
    meta["Corral-Actor"] = request.get(ACTOR, "")
    meta["Corral-Source"] = request.headers.get("X-Daytona-Source", request.headers.get("User-Agent", ""))[:100]
    return meta


def sandbox_reply(request: web.Request, sandbox: Any) -> web.Response:
    return reply(dto.sandbox_dto(sandbox, request.app[TOOLBOX_URL]))


# --- handlers -------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "runners": len(await request.app[SERVICE].runners())})


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


def _labels_filter(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        labels = json.loads(raw)
    except ValueError:
        raise InvalidRequest("labels must be a JSON object of strings") from None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidRequest("labels must be a JSON object of strings")
    return labels


def _cursor(raw: str | None) -> tuple[str, str] | None:
    if not raw:
        return None
    try:
        created, sandbox_id = base64.urlsafe_b64decode(raw.encode() + b"==").decode().split("|", 1)
        return created, sandbox_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("cursor is not valid") from None


async def list_sandboxes(request: web.Request) -> web.Response:
    query = request.query
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise InvalidRequest("limit must be an integer") from None
    if not 1 <= limit <= 200:
        raise InvalidRequest("limit must be between 1 and 200")
    states = [s for value in query.getall("states", []) for s in value.split(",") if s]
    found = request.app[SERVICE].list(organization(request), _labels_filter(query.get("labels")), states)
    after = _cursor(query.get("cursor"))
    if after:
        found = [s for s in found if (dto.iso(s.created_at), s.id) < after]
    page, rest = found[:limit], found[limit:]
    next_cursor = None
    if rest:
        last = page[-1]
        next_cursor = base64.urlsafe_b64encode(f"{dto.iso(last.created_at)}|{last.id}".encode()).decode().rstrip("=")
    url = request.app[TOOLBOX_URL]
    return reply(dto.ListSandboxesDto(items=[dto.sandbox_dto(s, url) for s in page], next_cursor=next_cursor))


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


async def toolbox_proxy_url(request: web.Request) -> web.Response:
    await request.app[SERVICE].get(organization(request), request.match_info["id"])
    return reply(dto.ToolboxUrlDto(url=request.app[TOOLBOX_URL]))


async def sandbox_events(request: web.Request) -> web.Response:
    history = await request.app[SERVICE].history(organization(request), request.match_info["id"])
    items = [
        dto.EventDto(version=e.originator_version, type=type(e.payload).__name__, occurred_at=dto.iso(e.timestamp),
                     data=msgspec.to_builtins(e.payload), meta=e.meta)
        for e in history
    ]
    return reply(dto.EventsDto(items=items))


ID = "/api/sandbox/{id}"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", health, "Liveness", public=True),
    Route("GET", "/api/openapi.json", openapi, "This OpenAPI document", public=True),
    Route("GET", "/api/config", config, "Platform configuration"),
    Route("POST", "/api/sandbox", create_sandbox, "Create a sandbox; answers once it is started or after a bounded wait",
          body=dto.CreateSandboxBody, response=dto.SandboxDto),
    Route("GET", "/api/sandbox", list_sandboxes, "List sandboxes (newest first, cursor pages)",
          response=dto.ListSandboxesDto, query=(
              Query("labels", {"type": "string"}, "JSON object; exact match on every key"),
              Query("states", {"type": "array", "items": {"type": "string"}}),
              Query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
              Query("cursor", {"type": "string"}))),
    Route("GET", ID, get_sandbox, "Get a sandbox by id or name", response=dto.SandboxDto),
    Route("DELETE", ID, delete_sandbox, "Destroy a sandbox", response=dto.SandboxDto),
    Route("POST", ID + "/start", start_sandbox, "Start a stopped sandbox", response=dto.SandboxDto),
    Route("POST", ID + "/stop", stop_sandbox, "Stop a sandbox", response=dto.SandboxDto,
          query=(Query("force", {"type": "boolean"}),)),
    Route("PUT", ID + "/labels", replace_labels, "Replace all labels", body=dto.LabelsBody, response=dto.LabelsDto),
    Route("GET", ID + "/toolbox-proxy-url", toolbox_proxy_url, "Toolbox base URL", response=dto.ToolboxUrlDto),
    Route("GET", ID + "/events", sandbox_events, "The sandbox's full event timeline", response=dto.EventsDto),
)


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


def create_app(service: SandboxService, directory: SandboxDirectory, toolbox_proxy_url: str) -> web.Application:
    public = frozenset(r.path for r in ROUTES if r.public)
    app = web.Application(middlewares=[json_errors(DomainError), authenticate(directory, public)], client_max_size=8 * 1024**2)
    app[SERVICE] = service
    app[DIRECTORY] = directory
    app[TOOLBOX_URL] = toolbox_proxy_url
    app[OPENAPI] = _encode(openapi_document(ROUTES))
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app
