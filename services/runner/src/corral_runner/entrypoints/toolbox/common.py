"""What every toolbox route module shares: the app keys, the sandbox id, the internal-token guard."""

from __future__ import annotations

import hmac

from aiohttp import web

from corral_web import error_response

from ...adapters.agent_link import AgentLink
from ...app.toolbox import Toolbox

TOOLBOX = web.AppKey("toolbox", Toolbox)
AGENT = web.AppKey("agent", AgentLink)
INTERNAL_TOKEN_HEADER = "X-Corral-Internal-Token"
PREFIX = "/toolbox/{sandbox_id}"
DAEMON = "DAYTONA_DAEMON"
"""`source` of toolbox errors: with a known `code`, the SDK raises its finer exception classes."""


def sandbox_id(request: web.Request) -> str:
    return request.match_info["sandbox_id"]


def internal_auth(token: str):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        presented = request.headers.get(INTERNAL_TOKEN_HEADER, "")
        if request.path != "/health" and not hmac.compare_digest(presented.encode(), token.encode()):
            return error_response(401, "This endpoint is internal: reach the toolbox through the proxy")
        return await handler(request)

    return middleware
