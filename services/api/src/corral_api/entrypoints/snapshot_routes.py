"""REST of snapshots (`/api/snapshots…`, Daytona's §17) and of a sandbox's snapshot and build logs."""

from __future__ import annotations

from aiohttp import web

from corral_web import decode_json, reply

from ..app.sandboxes import SandboxService
from ..app.snapshots import SnapshotRequest, SnapshotService
from ..app.volumes import VolumeService
from ..domain.errors import InvalidRequest, NotFound
from ..domain.identity import AUTHENTICATED
from . import snapshot_dto as dto
from .build_logs import BuildLogs
from .dto import SandboxDto, sandbox_dto
from .request_context import api_base, event_meta, organization
from .routes import Query, Route


class SnapshotEdge:
    """What the snapshot routes need, installed on the application under one key."""

    def __init__(self, *, snapshots: SnapshotService, volumes: VolumeService, sandboxes: SandboxService,
                 build_logs: BuildLogs, toolbox_url: str):
        self.snapshots = snapshots
        self.volumes = volumes
        self.sandboxes = sandboxes
        self.build_logs = build_logs
        self.toolbox_url = toolbox_url

    def install(self, app: web.Application) -> None:
        app[EDGE] = self


EDGE = web.AppKey("snapshot_edge", SnapshotEdge)


def _reply(request: web.Request, snapshot) -> web.Response:  # type: ignore[no-untyped-def]
    service = request.app[EDGE].snapshots
    return reply(dto.snapshot_dto(snapshot, service.last_used(snapshot)))


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number") from None


async def create_snapshot(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.CreateSnapshotBody)
    build = body.build_info
    snapshot = await request.app[EDGE].snapshots.create(organization(request), SnapshotRequest(
        name=body.name, image_name=body.image_name, dockerfile=build.dockerfile_content if build else None,
        context_hashes=(build.context_hashes or []) if build else [], entrypoint=body.entrypoint or [],
        cpu=body.cpu, gpu=body.gpu, memory=body.memory, disk=body.disk), event_meta(request))
    return _reply(request, snapshot)


async def list_snapshots(request: web.Request) -> web.Response:
    service = request.app[EDGE].snapshots
    page, limit = _int(request, "page", 1), _int(request, "limit", 100)
    items, total, pages = service.list(organization(request), page, limit, request.query.get("name"),
                                       request.query.get("sort", "lastUsedAt"), request.query.get("order", "desc"))
    return reply(dto.SnapshotPageDto(items=[dto.snapshot_dto(s, service.last_used(s)) for s in items], total=total,
                                     page=page, total_pages=pages))


async def get_snapshot(request: web.Request) -> web.Response:
    return _reply(request, request.app[EDGE].snapshots.get(organization(request), request.match_info["id"]))


async def delete_snapshot(request: web.Request) -> web.Response:
    await request.app[EDGE].snapshots.remove(organization(request), request.match_info["id"], event_meta(request))
    return web.Response(status=200)


async def activate_snapshot(request: web.Request) -> web.Response:
    return _reply(request, await request.app[EDGE].snapshots.activate(
        organization(request), request.match_info["id"], event_meta(request)))


async def deactivate_snapshot(request: web.Request) -> web.Response:
    await request.app[EDGE].snapshots.deactivate(organization(request), request.match_info["id"], event_meta(request))
    return web.Response(status=204)


async def snapshot_build_logs_url(request: web.Request) -> web.Response:
    snapshot = request.app[EDGE].snapshots.get(organization(request), request.match_info["id"])
    return reply(dto.UrlDto(url=f"{api_base(request)}/snapshots/{snapshot.id}/build-logs"))


def _follow(request: web.Request) -> bool:
    value = request.query.get("follow", "false").lower()
    if value not in ("true", "false"):
        raise InvalidRequest("follow must be true or false")
    return value == "true"


async def snapshot_build_logs(request: web.Request) -> web.StreamResponse:
    follow = _follow(request)
    snapshot = request.app[EDGE].snapshots.get(organization(request), request.match_info["id"])
    return await request.app[EDGE].build_logs.respond(request, snapshot.id, follow)


async def _built_sandbox(request: web.Request) -> str:
    sandbox = await request.app[EDGE].sandboxes.get(organization(request), request.match_info["id"])
    if sandbox.build is None:
        raise NotFound(f"Sandbox {sandbox.id} was not built from an image (no buildInfo), so it has no build logs")
    return sandbox.snapshot_id


async def sandbox_build_logs_url(request: web.Request) -> web.Response:
    snapshot_id = await _built_sandbox(request)
    return reply(dto.UrlDto(url=f"{api_base(request)}/snapshots/{snapshot_id}/build-logs"))


async def sandbox_build_logs(request: web.Request) -> web.StreamResponse:
    follow = _follow(request)
    return await request.app[EDGE].build_logs.respond(request, await _built_sandbox(request), follow)


async def snapshot_sandbox(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.SandboxSnapshotBody)
    edge = request.app[EDGE]
    sandbox = await edge.sandboxes.get(organization(request), request.match_info["id"])
    await edge.snapshots.capture(organization(request), sandbox, body.name, event_meta(request))
    sandbox = await edge.sandboxes.get(organization(request), sandbox.id)
    return reply(sandbox_dto(sandbox, edge.toolbox_url, edge.sandboxes.last_activity(sandbox)))


S = "/api/snapshots"
WRITE_SNAPSHOTS, DELETE_SNAPSHOTS = "write:snapshots", "delete:snapshots"
SNAPSHOT_ROUTES: tuple[Route, ...] = (
    Route("POST", S, create_snapshot, "Create a snapshot from an image on the host (imageName) or a Dockerfile "
          "(buildInfo); it builds in the background (pending → building|pulling → active)",
          body=dto.CreateSnapshotBody, response=dto.SnapshotDto, permission=WRITE_SNAPSHOTS),
    Route("GET", S, list_snapshots, "List snapshots (this organization's and the general ones)",
          response=dto.SnapshotPageDto, query=(
              Query("page", {"type": "integer", "minimum": 1}), Query("limit", {"type": "integer", "minimum": 1}),
              Query("name", {"type": "string"}, "substring of the name"),
              Query("sort", {"enum": ["name", "state", "lastUsedAt", "createdAt"]}),
              Query("order", {"enum": ["asc", "desc"]})), permission=AUTHENTICATED),
    Route("GET", S + "/{id}", get_snapshot, "Get a snapshot by id or name", response=dto.SnapshotDto,
          permission=AUTHENTICATED),
    Route("DELETE", S + "/{id}", delete_snapshot, "Remove a snapshot (409 while a sandbox uses it)",
          permission=DELETE_SNAPSHOTS),
    Route("POST", S + "/{id}/activate", activate_snapshot, "Make an inactive snapshot usable again",
          response=dto.SnapshotDto, permission=WRITE_SNAPSHOTS, action="activate"),
    Route("POST", S + "/{id}/deactivate", deactivate_snapshot, "Stop new sandboxes from using a snapshot",
          status=204, permission=WRITE_SNAPSHOTS, action="deactivate"),
    Route("GET", S + "/{id}/build-logs-url", snapshot_build_logs_url, "Where the snapshot's build log is served",
          response=dto.UrlDto, permission=AUTHENTICATED),
    Route("GET", S + "/{id}/build-logs", snapshot_build_logs,
          "The build log as plain text; with follow=true streamed (chunked) until the build ends",
          query=(Query("follow", {"type": "boolean"}),), permission=AUTHENTICATED),
    Route("POST", "/api/sandbox/{id}/snapshot", snapshot_sandbox,
          "Keep the sandbox's filesystem as a new snapshot that new sandboxes can start from",
          body=dto.SandboxSnapshotBody, response=SandboxDto, permission=WRITE_SNAPSHOTS, action="snapshot"),
    Route("GET", "/api/sandbox/{id}/build-logs-url", sandbox_build_logs_url,
          "Where the build log of a sandbox made from buildInfo is served", response=dto.UrlDto,
          permission=AUTHENTICATED),
    Route("GET", "/api/sandbox/{id}/build-logs", sandbox_build_logs,
          "The build log of a sandbox made from buildInfo (follow=true streams it)",
          query=(Query("follow", {"type": "boolean"}),), permission=AUTHENTICATED),
)
