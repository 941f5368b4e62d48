"""Toolbox: PTYs (`/process/pty...`), the HTTP calls and the terminal WebSockets.

WebSocket protocol (Daytona's): the server first sends the text frame
`{"type":"control","status":"connected"}`; then client binary (or text) frames are keystrokes and
server binary frames are terminal output. At the end the server sends
`{"type":"control","status":"exited","exitCode":N}` (to clients that offered the
`X-Daytona-Pty-Exit-Control` subprotocol) and closes with 1000 and the reason `{"exitCode":N}`;
a failure is `{"type":"control","status":"error","error":"..."}` and a close with 1011. A client
that goes away leaves the PTY running: it can reconnect and sees the recent output first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from corral_web import HttpError, decode_json, reply

from ...app.pty import (
    EXIT_CONTROL_PROTOCOL,
    Attachment,
    PtyCreateRequest,
    PtyExit,
    PtyFailure,
    PtyResizeRequest,
    Ptys,
    envs_from_protocols,
)
from .common import AGENT, DAEMON, PREFIX, sandbox_id

routes = web.RouteTableDef()

CONNECTED = '{"type":"control","status":"connected"}'
MAX_INPUT_MESSAGE = 4 * 1024**2


def _ptys(request: web.Request) -> Ptys:
    return Ptys(request.app[AGENT])


async def _agent(call: Awaitable[object]) -> object:
    try:
        return await call
    except PtyFailure as failure:
        raise HttpError(failure.status, failure.message, failure.code, DAEMON) from None


@routes.get(PREFIX + "/process/pty/create-connect")
async def create_connect(request: web.Request) -> web.StreamResponse:
    query = request.query
    protocols = _offered_protocols(request)
    try:
        envs = envs_from_protocols(protocols)
    except ValueError as error:
        raise HttpError(400, str(error)) from None
    body = PtyCreateRequest(id=query.get("id", ""), cwd=query.get("cwd") or None, envs=envs,
                            cols=_dimension(query, "cols"), rows=_dimension(query, "rows"))
    return await _serve(request, protocols, lambda: _ptys(request).create_and_attach(sandbox_id(request), body))


@routes.get(PREFIX + "/process/pty")
async def list_sessions(request: web.Request) -> web.Response:
    return reply({"sessions": await _agent(_ptys(request).list_sessions(sandbox_id(request)))})


@routes.post(PREFIX + "/process/pty")
async def create(request: web.Request) -> web.Response:
    body = await decode_json(request, PtyCreateRequest, empty_ok=False)
    info = await _agent(_ptys(request).create(sandbox_id(request), body))
    return reply({"sessionId": info["id"]}, status=201)  # type: ignore[index]


@routes.get(PREFIX + "/process/pty/{session_id}")
async def info(request: web.Request) -> web.Response:
    return reply(await _agent(_ptys(request).info(sandbox_id(request), request.match_info["session_id"])))


@routes.get(PREFIX + "/process/pty/{session_id}/connect")
async def connect(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["session_id"]
    return await _serve(request, _offered_protocols(request),
                        lambda: _ptys(request).attach(sandbox_id(request), session_id))


@routes.post(PREFIX + "/process/pty/{session_id}/resize")
async def resize(request: web.Request) -> web.Response:
    body = await decode_json(request, PtyResizeRequest, empty_ok=False)
    return reply(await _agent(_ptys(request).resize(sandbox_id(request), request.match_info["session_id"], body)))


@routes.delete(PREFIX + "/process/pty/{session_id}")
async def kill(request: web.Request) -> web.Response:
    await _agent(_ptys(request).kill(sandbox_id(request), request.match_info["session_id"]))
    return reply({})


async def _serve(request: web.Request, protocols: list[str],
                 attach: Callable[[], Awaitable[Attachment]]) -> web.StreamResponse:
    """Attach first (a refusal is an HTTP error the SDK maps), then upgrade and relay."""
    ws = web.WebSocketResponse(protocols=(EXIT_CONTROL_PROTOCOL,), max_msg_size=MAX_INPUT_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise HttpError(400, "This endpoint needs a WebSocket upgrade")
    attachment: Attachment = await _agent(attach())  # type: ignore[assignment]
    try:
        await ws.prepare(request)
        await ws.send_str(CONNECTED)
        await _relay(ws, attachment, exit_control=EXIT_CONTROL_PROTOCOL in protocols)
    finally:
        await attachment.close()
    return ws


async def _relay(ws: web.WebSocketResponse, attachment: Attachment, *, exit_control: bool) -> None:
    keystrokes = asyncio.create_task(_keystrokes(ws, attachment))
    output = asyncio.create_task(_output(ws, attachment))
    try:
        await asyncio.wait((keystrokes, output), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (keystrokes, output):
            task.cancel()
        await asyncio.gather(keystrokes, output, return_exceptions=True)
    if ws.closed:
        return  # the client went away: the PTY lives on
    try:
        if output.done() and not output.cancelled() and output.exception() is None:
            ending: PtyExit = output.result()
            if exit_control:
                await ws.send_str(json.dumps({"type": "control", "status": "exited", **ending.fields()}))
            await ws.close(code=1000, message=json.dumps(ending.fields(), separators=(",", ":")).encode())
            return
        failed = [t.exception() for t in (output, keystrokes) if t.done() and not t.cancelled() and t.exception()]
        if failed:
            message = failed[0].message if isinstance(failed[0], PtyFailure) else "lost the sandbox agent"
            await ws.send_str(json.dumps({"type": "control", "status": "error", "error": message}))
            await ws.close(code=1011, message=json.dumps({"error": message[:100]}).encode())
    except ConnectionError:
        pass  # the client is gone too
    finally:
        if not ws.closed:
            await ws.close()


async def _output(ws: web.WebSocketResponse, attachment: Attachment) -> PtyExit:
    while True:
        item = await attachment.read()
        if isinstance(item, PtyExit):
            return item
        await ws.send_bytes(item)


async def _keystrokes(ws: web.WebSocketResponse, attachment: Attachment) -> None:
    while True:
        message = await ws.receive()
        if message.type == WSMsgType.BINARY:
            await attachment.write(message.data)
        elif message.type == WSMsgType.TEXT:
            await attachment.write(message.data.encode("utf-8"))
        else:  # close, closing, closed, error: the client is gone
            return


def _offered_protocols(request: web.Request) -> list[str]:
    offered = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in offered.split(",") if p.strip()]


def _dimension(query, name: str) -> int | None:  # type: ignore[no-untyped-def]
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise HttpError(400, f"'{name}' must be an integer") from None
