"""WebSocket bridging, client <-> upstream, frame for frame: the proxy (client <-> runner) and the
runner (proxy <-> an app in a sandbox, for previews) both use it.

The client's offered subprotocols travel upstream (the PTY protocol carries its environment in one),
the upstream's choice travels back, and close codes and reasons pass through unchanged (the SDK reads
4008 as a timeout and a PTY's exit status from the close reason). A side that vanishes without a
close frame is reported to the other with a valid code (never 1006, which may not be sent): the
client gets 1014 (bad gateway) with a JSON `error` reason, so it never mistakes a lost upstream for
a normal end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import aiohttp
from aiohttp import WSMsgType, web

from . import error_response

log = logging.getLogger(__name__)

PROXY = "DAYTONA_PROXY"
UPSTREAM_LOST = (1014, b'{"error":"the connection to the sandbox runner was lost"}')
CLIENT_LOST = (1001, b"")
CLOSE_SECONDS = 15.0  # once one side has closed, how long the other gets to finish its closing handshake
_RESERVED_CODES = frozenset({1004, 1005, 1006, 1015})  # never sent in a close frame


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def offered_protocols(request: web.Request) -> tuple[str, ...]:
    raw = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def sendable_code(code: int | None) -> int:
    """A close code that may go on the wire: none or 1005 (no status) reads as 1000, invalid ones as 1011."""
    if not code or code == 1005:
        return 1000
    if code in _RESERVED_CODES or not (1000 <= code <= 1014 or 3000 <= code <= 4999):
        return 1011
    return code


ConnectError = Callable[[BaseException], web.StreamResponse | None]
"""Maps a failure to open the upstream socket to the client's HTTP answer (None: the default one)."""


async def bridge(request: web.Request, session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], *,
                 params: Mapping[str, str] | None = None, response_headers: Mapping[str, str] | None = None,
                 on_connect_error: ConnectError | None = None, lost: bytes = UPSTREAM_LOST[1],
                 source: str = PROXY) -> web.StreamResponse:
    """Open the upstream socket first (so a refusal becomes an HTTP error), then relay both ways.

    `params` are added to `url`'s query; `response_headers` go on the client's 101 answer; `lost` is the
    close reason the client gets (with 1014) when the upstream vanishes without a close frame."""
    upstream_headers = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket")}
    try:
        upstream = await session.ws_connect(url, params=params, headers=upstream_headers,
                                            protocols=offered_protocols(request), autoping=True, max_msg_size=0,
                                            heartbeat=None)
    except (aiohttp.ClientError, OSError) as error:
        answer = on_connect_error(error) if on_connect_error else None
        if answer is not None:
            return answer
        if isinstance(error, aiohttp.WSServerHandshakeError):
            status = error.status if error.status and error.status >= 400 else 502
            return error_response(status, f"The sandbox refused the WebSocket (HTTP {error.status})",
                                  "UPSTREAM_REFUSED", source)
        log.warning("websocket upstream %s unreachable: %s", url, error)
        return error_response(502, "The runner hosting the sandbox is unreachable", "RUNNER_UNAVAILABLE", source)
    client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=0,
                                   autoping=True)
    for key, value in (response_headers or {}).items():
        client.headers.add(key, value)
    upstream_lost = (UPSTREAM_LOST[0], lost)

    async def downstream() -> None:
        code, reason = await _relay(upstream, client) or upstream_lost
        await client.close(code=code, message=reason)

    async def upstream_pump() -> None:
        code, reason = await _relay(client, upstream) or CLIENT_LOST
        await upstream.close(code=code, message=reason)

    tasks: list[asyncio.Task[None]] = []
    try:
        await client.prepare(request)
        tasks = [asyncio.create_task(downstream()), asyncio.create_task(upstream_pump())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # The direction that ended has closed the other side's socket, which ends the other
        # direction too. That one is not cancelled meanwhile (nor when this handler is), or the
        # close frame it is sending (code, reason) would be lost.
        if tasks:
            await _finish(tasks, url)
        if not upstream.closed:
            await upstream.close(code=CLIENT_LOST[0])
        if client.prepared and not client.closed:
            await client.close(code=upstream_lost[0], message=upstream_lost[1])
    return client


async def _finish(tasks: list[asyncio.Task[None]], url: str) -> None:
    await asyncio.wait(tasks, timeout=CLOSE_SECONDS)
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception():
            log.warning("websocket bridge to %s ended: %s", url, task.exception())


async def _relay(source, sink) -> tuple[int, bytes] | None:  # type: ignore[no-untyped-def]
    """Copy frames until the source closes: its close code and reason, or None if it vanished
    without a close frame."""
    while True:
        message = await source.receive()
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == WSMsgType.CLOSE:
            return sendable_code(message.data), str(message.extra or "").encode()
        elif message.type in (WSMsgType.PING, WSMsgType.PONG):
            continue
        else:  # CLOSED, CLOSING, ERROR: no close frame came
            return None
