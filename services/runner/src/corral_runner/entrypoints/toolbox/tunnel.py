"""`GET /toolbox/{sandboxId}/tunnel/{port}`: a WebSocket that is a raw TCP stream to `port` on the
sandbox's loopback (the agent's `tunnel` op), for internal callers such as the ssh gateway's port
forwarding. The proxy never exposes it to users.

Binary frames from the client are bytes to the sandbox (text frames are taken as their UTF-8
bytes); bytes from the sandbox go out as binary frames. When the sandbox side ends, the socket is
closed with 1000; when the client closes or goes away, the tunnel is closed. A refusal comes before
the upgrade, as an HTTP JSON error: 502 `PORT_CLOSED` when nothing listens on the port, 502
`SANDBOX_NOT_RUNNING` when the sandbox's agent does not answer, 400 for a bad port.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from corral_agent.client import AgentError, AgentStream, AgentUnavailable, PortClosed, ProtocolViolation
from corral_web import HttpError

from .common import AGENT, DAEMON, PREFIX, sandbox_id

routes = web.RouteTableDef()

CHUNK_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 16 * 1024**2


def parse_port(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        raise HttpError(400, f"port must be a number from 1 to 65535, got {raw!r}", "BAD_REQUEST")
    return int(raw)


async def open_tunnel(request: web.Request, port: int) -> AgentStream:
    """The agent's tunnel, or the HTTP error that says why not."""
    try:
        return await request.app[AGENT].open_tunnel(sandbox_id(request), port)
    except PortClosed as refused:
        raise HttpError(502, refused.message, "PORT_CLOSED", DAEMON) from None
    except AgentError as refused:
        raise HttpError(400 if refused.code == "BAD_REQUEST" else 502, refused.message, refused.code, DAEMON) from None
    except (AgentUnavailable, ProtocolViolation, OSError):
        raise HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


@routes.get(PREFIX + "/tunnel/{port}")
async def tunnel(request: web.Request) -> web.StreamResponse:
    port = parse_port(request.match_info["port"])
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoping=True)
    if not ws.can_prepare(request).ok:
        raise HttpError(400, "This endpoint needs a WebSocket upgrade")
    stream = await open_tunnel(request, port)
    try:
        await ws.prepare(request)
        await relay(ws, stream)
    finally:
        await stream.close()
    return ws


async def relay(ws: web.WebSocketResponse, stream: AgentStream) -> None:
    to_sandbox = asyncio.create_task(_to_sandbox(ws, stream))
    to_client = asyncio.create_task(_to_client(ws, stream))
    try:
        await asyncio.wait((to_sandbox, to_client), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_sandbox, to_client):
            task.cancel()
        await asyncio.gather(to_sandbox, to_client, return_exceptions=True)
    if ws.closed:
        return  # the client closed (or vanished): the tunnel is closed by the caller
    ended = to_client.done() and not to_client.cancelled() and to_client.exception() is None
    try:
        if ended:
            await ws.close(code=1000)
        else:
            await ws.close(code=1011, message=b'{"error":"lost the sandbox side of the tunnel"}')
    except ConnectionError:
        pass


async def _to_sandbox(ws: web.WebSocketResponse, stream: AgentStream) -> None:
    while True:
        message = await ws.receive()
        if message.type == WSMsgType.BINARY:
            await stream.send_raw(message.data)
        elif message.type == WSMsgType.TEXT:
            await stream.send_raw(message.data.encode("utf-8"))
        else:  # close, closing, closed, error: the client is gone
            return


async def _to_client(ws: web.WebSocketResponse, stream: AgentStream) -> None:
    """Until the sandbox side ends (returns) or fails (raises)."""
    while chunk := await stream.read_raw(CHUNK_BYTES):
        await ws.send_bytes(chunk)
