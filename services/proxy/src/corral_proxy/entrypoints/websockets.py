"""WebSocket bridging for the proxy: client <-> runner, frame for frame.

The client's offered subprotocols travel upstream (the PTY protocol carries its environment in one),
the upstream's choice travels back, and close codes and reasons pass through unchanged (the SDK reads
4008 as a timeout and a PTY's exit status from the close reason).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def offered_protocols(request: web.Request) -> tuple[str, ...]:
    raw = request.headers.get("Sec-WebSocket-Protocol", "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


async def bridge(request: web.Request, session: aiohttp.ClientSession, url: str,
                 headers: dict[str, str]) -> web.StreamResponse:
    """Open the upstream socket first (so a refusal becomes an HTTP error), then relay both ways."""
    upstream_headers = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket")}
    try:
        upstream = await session.ws_connect(url, params=request.query, headers=upstream_headers,
                                            protocols=offered_protocols(request), autoping=True, max_msg_size=0,
                                            heartbeat=None)
    except aiohttp.WSServerHandshakeError as error:
        return web.json_response({"statusCode": error.status, "message": error.message or "upstream refused",
                                  "code": "UPSTREAM_REFUSED"}, status=error.status or 502)
    client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=0,
                                   autoping=True)
    await client.prepare(request)

    async def relay(source, sink) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        """Copy frames until the source closes; returns its close code and reason."""
        while True:
            message = await source.receive()
            if message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == WSMsgType.CLOSE:
                return int(message.data or 1000), str(message.extra or "")
            elif message.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            else:
                return int(source.close_code or 1000), ""

    async def downstream() -> None:
        code, reason = await relay(upstream, client)
        await client.close(code=code, message=reason.encode())

    async def upstream_pump() -> None:
        code, reason = await relay(client, upstream)
        await upstream.close(code=code, message=reason.encode())

    tasks = [asyncio.create_task(downstream()), asyncio.create_task(upstream_pump())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception():
                log.warning("websocket bridge to %s ended: %s", url, task.exception())
    finally:
        if not upstream.closed:
            await upstream.close()
        if not client.closed:
            await client.close(code=upstream.close_code or 1000)
    return client
