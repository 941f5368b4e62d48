"""Preview URLs: `{port}-{sandboxId}.{domain}` (any path) and `/preview/{sandboxId}/{port}/...` ->
the runner's `/toolbox/{id}/proxy/{port}/...` -> an agent tunnel -> `localhost:{port}` in the sandbox.

HTTP is streamed both ways (chunked bodies and server-sent events chunk by chunk), WebSockets are
bridged frame for frame, and both take the same credentials (see app/previews.py). Our credentials
never reach the app: a Corral API key, the preview-token header, the query parameter and the preview
cookie are removed. Preview traffic is activity, unless `X-Daytona-Skip-Last-Activity-Update: true`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from yarl import URL

from corral_web.forwarding import SKIP_AUTO_HEADERS, relay_response, request_headers
from corral_web.websockets import bridge, is_websocket

from ..app.directory import Refused
from ..app.previews import Admission, Credentials, PreviewGate, Starting
from ..domain import previews as pv
from .keys import ACTIVITY, INTERNAL_TOKEN, SESSION
from .pages import page, port_closed, wants_html

log = logging.getLogger(__name__)

GATE = web.AppKey("preview_gate", PreviewGate)
OPTIONS = web.AppKey("preview_options", dict)
INTERNAL_TOKEN_HEADER = "X-Corral-Internal-Token"
ERROR_HEADER = "X-Corral-Error"
"""Set by the runner on its own refusals (`PORT_CLOSED`, `SANDBOX_NOT_RUNNING`)."""
RETRY_SECONDS = 0.2
APP_LOST = b'{"error":"the connection to the app in the sandbox was lost"}'

Forward = Callable[[], Awaitable[web.StreamResponse]]


def setup(app: web.Application, gate: PreviewGate, *, domain: str, port_wait: float) -> None:
    """Serve previews on `app`: the host form (a middleware, before any route) and the path form."""
    app[GATE] = gate
    app[OPTIONS] = {"domain": domain, "port_wait": port_wait}
    app.middlewares.append(_host_form(domain))
    app.router.add_route("*", "/preview/{label}/{port}{tail:.*}", path_form)


def _host_form(domain: str):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        address = pv.parse_host(request.host, domain, request.raw_path)
        if address is None:
            return await handler(request)
        return await serve(request, address)

    return middleware


async def path_form(request: web.Request) -> web.StreamResponse:
    address = pv.parse_path(request.raw_path)
    if address is None:
        return page(request, 404, "Not a preview URL: /preview/{sandboxId}/{port}/...", "NOT_FOUND")
    return await serve(request, address)


def credentials_of(request: web.Request, address: pv.PreviewAddress, query_token: str | None) -> Credentials:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return Credentials(bearer=token.strip() if scheme.lower() == "bearer" else "",
                       header_token=request.headers.get(pv.TOKEN_HEADER, ""), query_token=query_token,
                       cookie="" if address.signed else request.cookies.get(pv.cookie_name(address.label), ""))


async def serve(request: web.Request, address: pv.PreviewAddress) -> web.StreamResponse:
    gate = request.app[GATE]
    now = time.time()
    upstream_path, query_token = pv.strip_query_key(address.upstream, pv.QUERY_KEY)
    websocket = is_websocket(request)
    try:
        admission = await gate.admit(address, credentials_of(request, address, query_token), now)
        was_down = await gate.ready(admission.route, address.port, browser=wants_html(request) and not websocket)
        base = await gate.directory.runner_url(admission.route.runner_id)
    except Refused as refused:
        return page(request, refused.status, refused.message, refused.code)
    except Starting as starting:
        return page(request, 503, f"Sandbox {starting.sandbox_id} is starting; this page reloads by itself",
                    "SANDBOX_STARTING", retry_after=starting.retry_after)
    route = admission.route
    url = URL(f"{base}/toolbox/{route.sandbox_id}/proxy/{address.port}{upstream_path}", encoded=True)
    headers = forwarded_headers(request, address, admission)
    cookies = [("Set-Cookie", _cookie(gate, request, address, route.sandbox_id, now))] if admission.set_cookie else []
    activity = request.app[ACTIVITY]
    counted = request.headers.get(pv.SKIP_ACTIVITY_HEADER, "").lower() != "true"
    if counted:
        activity.touch(route.sandbox_id)
    # A sandbox that was just (woken and) started may need a moment before its app listens again: retry
    # "nothing listens" for a while (only when no request body has been consumed).
    retry_until = time.monotonic() + request.app[OPTIONS]["port_wait"] if was_down and not request.body_exists else 0.0
    session = request.app[SESSION]
    if websocket:
        keepalive = asyncio.create_task(activity.while_open(route.sandbox_id)) if counted else None
        try:
            return await _retrying(retry_until, lambda: _websocket(request, session, url, headers, cookies, address))
        finally:
            if keepalive is not None:
                keepalive.cancel()
    return await _retrying(retry_until, lambda: _http(request, session, url, headers, cookies, address))


async def _retrying(retry_until: float, attempt: Forward) -> web.StreamResponse:
    while True:
        response = await attempt()
        refusal = response.headers.get(ERROR_HEADER) if not response.prepared else None
        if refusal is None:
            return response
        if refusal != "PORT_CLOSED" or time.monotonic() >= retry_until:
            del response.headers[ERROR_HEADER]  # our marker, not for the client
            return response
        await asyncio.sleep(RETRY_SECONDS)


async def _http(request: web.Request, session: aiohttp.ClientSession, url: URL, headers: dict[str, str],
                cookies: list[tuple[str, str]], address: pv.PreviewAddress) -> web.StreamResponse:
    try:
        async with session.request(request.method, url, headers=headers, allow_redirects=False,
                                   data=request.content if request.body_exists else None,
                                   skip_auto_headers=SKIP_AUTO_HEADERS) as upstream:
            refusal = upstream.headers.get(ERROR_HEADER)
            if refusal:
                return _refusal(request, refusal, address)
            return await relay_response(request, upstream, extra=cookies,
                                        rewrite=lambda name, value: _location(request, address, name, value))
    except aiohttp.ClientConnectionError as error:
        log.warning("runner unreachable for preview %s: %s", url, error)
        return page(request, 502, "The runner hosting the sandbox is unreachable", "RUNNER_UNAVAILABLE")


async def _websocket(request: web.Request, session: aiohttp.ClientSession, url: URL, headers: dict[str, str],
                     cookies: list[tuple[str, str]], address: pv.PreviewAddress) -> web.StreamResponse:
    def refused(error: BaseException) -> web.StreamResponse | None:
        if isinstance(error, aiohttp.WSServerHandshakeError) and error.headers is not None:
            refusal = error.headers.get(ERROR_HEADER)
            if refusal:
                return _refusal(request, refusal, address)
        return None

    return await bridge(request, session, str(url.with_scheme("ws" if url.scheme == "http" else "wss")), headers,
                        response_headers=dict(cookies), on_connect_error=refused, lost=APP_LOST)


def _refusal(request: web.Request, code: str, address: pv.PreviewAddress) -> web.Response:
    if code == "PORT_CLOSED":
        response = port_closed(request, address.port)
    else:
        response = page(request, 502, "The sandbox is not reachable on its runner", code)
    response.headers[ERROR_HEADER] = code
    return response


def forwarded_headers(request: web.Request, address: pv.PreviewAddress, admission: Admission) -> dict[str, str]:
    drop = {pv.TOKEN_HEADER, pv.SKIP_ACTIVITY_HEADER, INTERNAL_TOKEN_HEADER, ERROR_HEADER, "Cookie", "Expect",
            "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix"}
    if admission.key_presented:
        drop.add("Authorization")
    headers = request_headers(request.headers, drop)
    cookie = pv.without_cookies("; ".join(request.headers.getall("Cookie", [])), pv.COOKIE_PREFIX)
    if cookie:
        headers["Cookie"] = cookie
    headers[INTERNAL_TOKEN_HEADER] = request.app[INTERNAL_TOKEN]
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = request.headers.get("X-Forwarded-Proto") or request.scheme
    peer = request.remote or ""
    headers["X-Forwarded-For"] = ", ".join(filter(None, (request.headers.get("X-Forwarded-For"), peer)))
    if address.form == "path":
        headers["X-Forwarded-Prefix"] = address.prefix
    return headers  # type: ignore[return-value]


def _cookie(gate: PreviewGate, request: web.Request, address: pv.PreviewAddress, sandbox_id: str, now: float) -> str:
    name, value = gate.cookie(sandbox_id, now)
    path = f"{pv.PATH_PREFIX}{sandbox_id}" if address.form == "path" else "/"
    secure = "; Secure" if (request.headers.get("X-Forwarded-Proto") or request.scheme) == "https" else ""
    return f"{name}={value}; Max-Age={pv.COOKIE_SECONDS}; Path={path}; HttpOnly; SameSite=Lax{secure}"


def _location(request: web.Request, address: pv.PreviewAddress, name: str, value: str) -> str:
    """Redirects of the app point back through the preview: `http://localhost:{port}/x` becomes the
    preview's own origin, and (path form) an absolute path gets the `/preview/{id}/{port}` prefix."""
    if name.lower() not in ("location", "content-location"):
        return value
    for local in (f"http://localhost:{address.port}", f"http://127.0.0.1:{address.port}"):
        if value == local or value.startswith(local + "/") or value.startswith(local + "?"):
            scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
            return f"{scheme}://{request.host}{address.prefix}{value[len(local):] or '/'}"
    if address.prefix and value.startswith("/") and not value.startswith("//"):
        return address.prefix + value
    return value


