"""REST of volumes (`/api/volumes…`, Daytona's §18)."""

from __future__ import annotations

from aiohttp import web

from corral_web import decode_json, reply

from ..domain.errors import InvalidRequest
from . import snapshot_dto as dto
from .request_context import event_meta, organization
from .routes import Query, Route
from .snapshot_routes import EDGE


def _volumes(request: web.Request):  # type: ignore[no-untyped-def]
    return request.app[EDGE].volumes


async def create_volume(request: web.Request) -> web.Response:
    body = await decode_json(request, dto.CreateVolumeBody)
    volume = await _volumes(request).create(organization(request), body.name, event_meta(request))
    return reply(dto.volume_dto(volume))


async def list_volumes(request: web.Request) -> web.Response:
    include = request.query.get("includeDeleted", "false").lower()
    if include not in ("true", "false"):
        raise InvalidRequest("includeDeleted must be true or false")
    return reply([dto.volume_dto(v) for v in _volumes(request).list(organization(request), include == "true")])


async def get_volume(request: web.Request) -> web.Response:
    return reply(dto.volume_dto(_volumes(request).get(organization(request), request.match_info["id"])))


async def get_volume_by_name(request: web.Request) -> web.Response:
    return reply(dto.volume_dto(_volumes(request).by_name(organization(request), request.match_info["name"])))


async def delete_volume(request: web.Request) -> web.Response:
    await _volumes(request).delete(organization(request), request.match_info["id"], event_meta(request))
    return web.Response(status=200)


V = "/api/volumes"
VOLUME_ROUTES: tuple[Route, ...] = (
    Route("POST", V, create_volume, "Create a volume (pending_create → ready)", body=dto.CreateVolumeBody,
          response=dto.VolumeDto, permission="write:volumes"),
    Route("GET", V, list_volumes, "List volumes (a JSON array)", response=list[dto.VolumeDto],
          query=(Query("includeDeleted", {"type": "boolean"}),), permission="read:volumes"),
    Route("GET", V + "/by-name/{name}", get_volume_by_name, "Get a volume by name (404 if there is none)",
          response=dto.VolumeDto, permission="read:volumes"),
    Route("GET", V + "/{id}", get_volume, "Get a volume by id", response=dto.VolumeDto, permission="read:volumes"),
    Route("DELETE", V + "/{id}", delete_volume, "Delete a volume (409 while a sandbox mounts it)",
          permission="delete:volumes"),
)
