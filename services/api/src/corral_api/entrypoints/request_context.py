"""Who is asking: the organization and actor the authentication middleware found, and the metadata every
recorded event carries. Shared by every routes module."""

from __future__ import annotations

from aiohttp import web

from corral_observability import inject_headers

ORGANIZATION = web.RequestKey("organization_id", str)
ACTOR = web.RequestKey("actor", str)


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
