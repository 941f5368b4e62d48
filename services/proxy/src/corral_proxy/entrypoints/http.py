"""The proxy's HTTP front: `/toolbox/{sandboxId}/...` -> the runner that hosts the sandbox (and the
preview URLs, entrypoints/previews.py).

Bodies are streamed both ways (never held whole in memory); the caller's API key is checked against
the sandbox's organization and replaced by the internal token on the hop to the runner.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import web

from corral_web import error_response, json_errors
from corral_web.forwarding import relay_response
from corral_web.websockets import bridge, is_websocket

from ..app.activity import ActivityReporter
from ..app.directory import Directory, Refused
from ..app.previews import PreviewGate
from ..domain import signing
from ..domain.paths import escapes
from . import previews
from .keys import ACTIVITY, DIRECTORY, INTERNAL_TOKEN, SESSION

log = logging.getLogger(__name__)


HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                        "transfer-encoding", "upgrade", "host", "authorization", "content-length"})
PROXY = "DAYTONA_PROXY"


INTERNAL_ONLY = frozenset({"tunnel"})
"""First segments of runner toolbox paths for internal callers only (the raw port tunnel, used by the ssh
gateway): never reachable through the proxy."""


async def toolbox(request: web.Request) -> web.StreamResponse:
    directory = request.app[DIRECTORY]
    sandbox_id = request.match_info["sandbox_id"]
    query = request.query
    if escapes(request.match_info["tail"]) or escapes(sandbox_id):
        return error_response(400, "The path must not hold '.' or '..' segments", "INVALID_PATH", PROXY)
    if request.match_info["tail"].lstrip("/").split("/", 1)[0] in INTERNAL_ONLY:
        return error_response(404, f"Cannot {request.method} /toolbox/{sandbox_id}/{request.match_info['tail']}",
                              "NOT_FOUND", PROXY)
    try:
        if signing.is_signed_request(request.method, request.match_info["tail"], query):
            # A signed file URL carries no API key: the signature (checked against the sandbox's key) is the grant.
            route = await directory.signed_route(sandbox_id, request.method, query.get("path", ""),
                                                 query.get("expires", ""), query["signature"], time.time())
        else:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            bearer = token.strip() if scheme.lower() == "bearer" else ""
            organization = directory.organization_of_key(bearer) if bearer else None
            if organization is None:
                return error_response(401, "Invalid or missing API key", "UNAUTHORIZED", PROXY)
            if directory.suspended(organization):
                return error_response(403, f"Organization {organization} is suspended", "ORGANIZATION_SUSPENDED",
                                      PROXY)
            route = await directory.route(sandbox_id, organization)
        base = await directory.runner_url(route.runner_id)
    except Refused as refused:
        return error_response(refused.status, refused.message, refused.code, PROXY)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers["X-Corral-Internal-Token"] = request.app[INTERNAL_TOKEN]
    headers["X-Forwarded-Host"] = request.host
    url = f"{base}/toolbox/{sandbox_id}/{request.match_info['tail']}"
    activity = request.app[ACTIVITY]
    activity.touch(sandbox_id)
    if is_websocket(request):
        keepalive = asyncio.create_task(activity.while_open(sandbox_id))
        try:
            return await bridge(request, request.app[SESSION], url.replace("http", "ws", 1), headers,
                                params=request.query)
        finally:
            keepalive.cancel()
    body = request.content if request.body_exists else None
    try:
        async with request.app[SESSION].request(request.method, url, params=request.query, headers=headers,
                                                data=body, allow_redirects=False) as upstream:
            return await relay_response(request, upstream)
    except aiohttp.ClientConnectionError as error:
        log.warning("runner %s unreachable for %s: %s", route.runner_id, sandbox_id, error)
        return error_response(502, f"The runner hosting sandbox {sandbox_id} is unreachable", "RUNNER_UNAVAILABLE",
                              PROXY)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(directory: Directory, internal_token: str, activity: ActivityReporter,
               previews_gate: PreviewGate | None = None, *, preview_domain: str = "preview.localhost",
               preview_port_wait: float = 10.0) -> web.Application:
    app = web.Application(middlewares=[json_errors()], client_max_size=1024**4)
    app[DIRECTORY] = directory
    app[ACTIVITY] = activity
    app[INTERNAL_TOKEN] = internal_token
    app.router.add_get("/health", health)
    app.router.add_route("*", "/toolbox/{sandbox_id}/{tail:.*}", toolbox)
    if previews_gate is not None:
        previews.setup(app, previews_gate, domain=preview_domain, port_wait=preview_port_wait)

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=60)
        app[SESSION] = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                             auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session)
    return app
