"""The runner's internal endpoints for the ssh-gateway: `/internal/{sandbox_id}/...`.

They sit outside `/toolbox`, so the proxy (which forwards `/toolbox/{id}/...` only) never exposes them;
like every route of the front they need the internal token.

- `GET /internal/{id}/exec` (WebSocket): the client's first text frame is the request
  `{"command"?, "argv"?, "program"?, "cwd"?, "env"?}`; the server answers `{"type": "started", "pid"}` or
  `{"type": "error", "code", "message"}` (then closes). After `started`, binary frames are one channel
  byte and its payload, as the agent's mux frames: the client sends 0 stdin, 4 end of stdin, 5 a signal
  name; the server sends 1 stdout, 2 stderr, and 3 the exit (JSON `{"exitCode", "signal"}`), then
  closes with 1000. A client that goes away has the process group killed; a lost agent closes with 1011.
- `GET /internal/{id}/pty?id=&cols=&rows=&term=&command=` (WebSocket): a PTY (running `command` if given,
  else an interactive shell) with the toolbox PTY protocol (pty.py); resize and kill through the
  toolbox routes.
"""

from __future__ import annotations

import asyncio
import json

import msgspec
from aiohttp import WSMsgType, web

from corral_agent.client import AgentError, AgentUnavailable, ExecStream, ProtocolViolation
from corral_agent.framing import MUX_EOF, MUX_EXIT, MUX_SIGNAL, MUX_STDIN
from corral_web import HttpError

from ..app.pty import PtyCreateRequest, Ptys
from .toolbox.common import AGENT, sandbox_id
from .toolbox.pty import _dimension, _offered_protocols, _serve

routes = web.RouteTableDef()

PREFIX = "/internal/{sandbox_id}"
MAX_FRAME = 2 * 1024 * 1024
FIRST_FRAME_SECONDS = 30.0


class ExecBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    command: str | None = None
    argv: list[str] | None = None
    program: str | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None


@routes.get(PREFIX + "/exec")
async def exec_stream(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, autoping=True)
    if not ws.can_prepare(request).ok:
        raise HttpError(400, "This endpoint needs a WebSocket upgrade")
    await ws.prepare(request)
    try:
        first = await ws.receive(timeout=FIRST_FRAME_SECONDS)
    except TimeoutError:
        await ws.close(code=1008, message=b"no request")
        return ws
    if first.type != WSMsgType.TEXT:
        await ws.close(code=1008, message=b"the first frame must be the JSON request")
        return ws
    try:
        body = msgspec.json.decode(first.data, type=ExecBody)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        await _refuse(ws, "BAD_REQUEST", f"invalid request: {error}")
        return ws
    try:
        stream = await request.app[AGENT].open_exec_stream(
            sandbox_id(request), {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None})
    except AgentError as error:
        await _refuse(ws, error.code, error.message)
        return ws
    except (AgentUnavailable, ProtocolViolation, OSError):
        await _refuse(ws, "SANDBOX_NOT_RUNNING", f"Sandbox {sandbox_id(request)} is not running on this runner")
        return ws
    try:
        await ws.send_str(json.dumps({"type": "started", "pid": stream.pid}))
        await _relay(ws, stream)
    finally:
        await stream.close()  # before the exit: the agent kills the process group
    return ws


async def _refuse(ws: web.WebSocketResponse, code: str, message: str) -> None:
    await ws.send_str(json.dumps({"type": "error", "code": code, "message": message}))
    await ws.close(code=1000)


async def _relay(ws: web.WebSocketResponse, stream: ExecStream) -> None:
    inbound = asyncio.create_task(_from_client(ws, stream))
    outbound = asyncio.create_task(_to_client(ws, stream))
    try:
        await asyncio.wait((inbound, outbound), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not outbound.done():  # the client went away: stop (closing the stream kills the process)
            outbound.cancel()
        inbound.cancel()
        await asyncio.gather(inbound, outbound, return_exceptions=True)
    if ws.closed:
        return
    ended = outbound.done() and not outbound.cancelled() and outbound.exception() is None and outbound.result()
    if ended:
        await ws.close(code=1000)
    else:
        await ws.close(code=1011, message=b'{"error":"lost the sandbox agent"}')


async def _from_client(ws: web.WebSocketResponse, stream: ExecStream) -> None:
    while True:
        message = await ws.receive()
        if message.type == WSMsgType.BINARY and message.data:
            channel, payload = message.data[0], message.data[1:]
            if channel == MUX_STDIN:
                await stream.write_stdin(payload)
            elif channel == MUX_EOF:
                await stream.close_stdin()
            elif channel == MUX_SIGNAL:
                await stream.signal(payload.decode("ascii", "replace"))
        elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return


async def _to_client(ws: web.WebSocketResponse, stream: ExecStream) -> bool:
    """Relay until the exit frame (True) or the agent's stream ends without one (False)."""
    while True:
        try:
            frame = await stream.read()
        except (ProtocolViolation, OSError):
            return False
        if frame is None:
            return False
        channel, payload = frame
        await ws.send_bytes(bytes((channel,)) + payload)
        if channel == MUX_EXIT:
            return True


@routes.get(PREFIX + "/pty")
async def pty(request: web.Request) -> web.StreamResponse:
    query = request.query
    term = query.get("term") or None
    body = PtyCreateRequest(id=query.get("id", ""), cwd=query.get("cwd") or None, envs={"TERM": term} if term else None,
                            cols=_dimension(query, "cols"), rows=_dimension(query, "rows"))
    command = query.get("command")
    ptys = Ptys(request.app[AGENT])
    return await _serve(request, _offered_protocols(request),
                        lambda: ptys.create_and_attach(sandbox_id(request), body, command=command))
