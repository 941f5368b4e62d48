"""The proxy's HTTP front: `/toolbox/{sandboxId}/...` -> the runner that hosts the sandbox.

Bodies are streamed both ways (never held whole in memory); the caller's API key is checked against
the sandbox's organization and replaced by the internal token on the hop to the runner.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from corral_web import error_response, json_errors

from ..app.directory import Directory, Refused
from .websockets import bridge, is_websocket

log = logging.getLogger(__name__)

DIRECTORY = web.AppKey("directory", Directory)
SESSION = web.AppKey("session", aiohttp.ClientSession)
INTERNAL_TOKEN = web.AppKey("internal_token", str)

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                        "transfer-encoding", "upgrade", "host", "authorization", "content-length"})
PROXY = "DAYTONA_PROXY"


async def toolbox(request: web.Request) -> web.StreamResponse:
    directory = request.app[DIRECTORY]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    organization = directory.organization_of_key(token.strip()) if scheme.lower() == "bearer" and token else None
    if organization is None:
        return error_response(401, "Invalid or missing API key", "UNAUTHORIZED", PROXY)
    sandbox_id = request.match_info["sandbox_id"]
    try:
        route = await directory.route(sandbox_id, organization)
        base = await directory.runner_url(route.runner_id)
    except Refused as refused:
        return error_response(refused.status, refused.message, refused.code, PROXY)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers["X-Corral-Internal-Token"] = request.app[INTERNAL_TOKEN]
    headers["X-Forwarded-Host"] = request.host
    url = f"{base}/toolbox/{sandbox_id}/{request.match_info['tail']}"
    if is_websocket(request):
        return await bridge(request, request.app[SESSION], url.replace("http", "ws", 1), headers)
    body = request.content if request.body_exists else None
    try:
        async with request.app[SESSION].request(request.method, url, params=request.query, headers=headers,
                                                data=body, allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers[key] = value
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientConnectionError as error:
        log.warning("runner %s unreachable for %s: %s", route.runner_id, sandbox_id, error)
        return error_response(502, f"The runner hosting sandbox {sandbox_id} is unreachable", "RUNNER_UNAVAILABLE",
                              PROXY)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(directory: Directory, internal_token: str) -> web.Application:
    app = web.Application(middlewares=[json_errors()], client_max_size=1024**4)
    app[DIRECTORY] = directory
    app[INTERNAL_TOKEN] = internal_token
    app.router.add_get("/health", health)
    app.router.add_route("*", "/toolbox/{sandbox_id}/{tail:.*}", toolbox)

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=60)
        app[SESSION] = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                             auto_decompress=False)
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session)
    return app
