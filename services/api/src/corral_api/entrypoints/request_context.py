"""What every routes module shares: who is asking (the organization and actor the access middleware
found), the metadata every recorded event carries, and the Sandbox reply."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral_observability import inject_headers
from corral_web import reply

from ..app.sandboxes import SandboxService
from . import dto

ORGANIZATION = web.RequestKey("organization_id", str)
ACTOR = web.RequestKey("actor", str)
SERVICE = web.AppKey("service", SandboxService)
TOOLBOX_URL = web.AppKey("toolbox_url", str)


def organization(request: web.Request) -> str:
    return request[ORGANIZATION]


def event_meta(request: web.Request) -> dict[str, str]:
    meta = inject_headers({})
    meta["Corral-Actor"] = request.get(ACTOR, "")
    meta["Corral-Source"] = request.headers.get("X-Daytona-Source", request.headers.get("User-Agent", ""))[:100]
    return meta


def api_base(request: web.Request) -> str:
    """The api's own base URL as the caller reached it (e.g. `http://127.0.0.1:3000/api`)."""
    return f"{request.url.origin()}/api"


def sandbox_reply(request: web.Request, sandbox: Any) -> web.Response:
    service = request.app[SERVICE]
    return reply(dto.sandbox_dto(sandbox, request.app[TOOLBOX_URL], service.last_activity(sandbox)))
