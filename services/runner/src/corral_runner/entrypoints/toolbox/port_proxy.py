"""`ANY /toolbox/{sandboxId}/proxy/{port}/{path}`: HTTP and WebSockets to `localhost:{port}` inside the
sandbox (Daytona's toolbox `/proxy/{port}/*`), carried by agent tunnels; preview URLs arrive here
through the proxy.

The app sees the request as sent to it directly: `Host: localhost:{port}` (so dev servers' host checks
pass), the original host in `X-Forwarded-Host`, the path after `/proxy/{port}` byte for byte, the body
streamed (its `Content-Length` kept). The answer streams back chunk by chunk (server-sent events,
chunked bodies). Connections to the app are pooled per sandbox and port (keep-alive), so a request
costs no new tunnel. Refusals of the runner itself carry `X-Corral-Error` (the proxy turns them into
its pages): 502 `PORT_CLOSED` when nothing listens on the port, 502 `SANDBOX_NOT_RUNNING` when the
sandbox's agent does not answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

from corral_web import error_response
from corral_web.forwarding import SKIP_AUTO_HEADERS, relay_response, request_headers
from corral_web.websockets import bridge, is_websocket

from ...adapters.agent_link import AgentLink
from ...adapters.tunnel_connector import PortClosedError, SandboxUnreachableError, TunnelConnector
from .common import DAEMON, INTERNAL_TOKEN_HEADER, PREFIX, sandbox_id
from .tunnel import parse_port

routes = web.RouteTableDef()
PORTS = web.AppKey("ports", aiohttp.ClientSession)
ERROR_HEADER = "X-Corral-Error"
"""On the runner's own refusals (never on the app's answers): the error code."""
APP_LOST = b'{"error":"the connection to the app in the sandbox was lost"}'


def setup(app: web.Application, agent: AgentLink) -> None:
    async def session(app: web.Application) -> AsyncIterator[None]:
        app[PORTS] = aiohttp.ClientSession(connector=TunnelConnector(agent), auto_decompress=False,
                                           cookie_jar=aiohttp.DummyCookieJar(),
                                           timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        yield
        await app[PORTS].close()

    app.cleanup_ctx.append(session)


def refusal(sandbox: str, error: BaseException) -> web.Response | None:
    """The runner's answer when the app cannot be reached (None: not a refusal of ours)."""
    if isinstance(error, PortClosedError):
        code, message = "PORT_CLOSED", str(error)
    elif isinstance(error, SandboxUnreachableError):
        code, message = "SANDBOX_NOT_RUNNING", f"Sandbox {sandbox} is not running on this runner"
    else:
        return None
    response = error_response(502, message, code, DAEMON)
    response.headers[ERROR_HEADER] = code
    return response


def target(request: web.Request, port: int) -> URL:
    """`http://{sandbox}:{port}` + the request's path after `/proxy/{port}` and its query, unchanged."""
    raw_path, _, raw_query = request.raw_path.partition("?")
    segments = raw_path.split("/", 5)  # "", "toolbox", id, "proxy", port, rest
    path = "/" + segments[5] if len(segments) > 5 else "/"
    return URL(f"http://{sandbox_id(request)}:{port}{path}" + (f"?{raw_query}" if raw_query else ""), encoded=True)


@routes.route("*", PREFIX + "/proxy/{port}")
@routes.route("*", PREFIX + "/proxy/{port}/{tail:.*}")
async def port_proxy(request: web.Request) -> web.StreamResponse:
    port = parse_port(request.match_info["port"])
    sandbox = sandbox_id(request)
    url = target(request, port)
    headers = request_headers(request.headers, drop=(INTERNAL_TOKEN_HEADER, ERROR_HEADER))
    headers["Host"] = f"localhost:{port}" if port != 80 else "localhost"
    session = request.app[PORTS]
    if is_websocket(request):
        return await bridge(request, session, str(url.with_scheme("ws")), headers,
                            on_connect_error=lambda error: refusal(sandbox, error), lost=APP_LOST, source=DAEMON)
    try:
        async with session.request(request.method, url, headers=headers, allow_redirects=False,
                                   data=request.content if request.body_exists else None,
                                   skip_auto_headers=SKIP_AUTO_HEADERS) as upstream:
            return await relay_response(request, upstream, drop=(ERROR_HEADER,))
    except aiohttp.ClientConnectionError as error:
        answer = refusal(sandbox, error)
        if answer is not None:
            return answer
        return error_response(502, f"The app on port {port} closed the connection without answering: {error}",
                              "UPSTREAM_CLOSED", DAEMON)
