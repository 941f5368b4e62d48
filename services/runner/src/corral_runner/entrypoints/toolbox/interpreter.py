"""Toolbox: the code interpreter (`/process/interpreter/...`): contexts, and runs over a WebSocket.

A run: the client sends one text frame `{code, contextId?, envs?, timeout?}`; the server streams
`{"type": "stdout" | "stderr", "text"}` and `{"type": "error", "name", "value", "traceback"}`, then
`{"type": "control", "text": "completed"}` and closes with 1000. A timeout closes with 4008 (the SDK's
DaytonaTimeoutError); a bad request or an unknown context closes with 1008 and the reason.
"""

from __future__ import annotations

import msgspec
from aiohttp import WSMsgType, web

from corral_agent.client import AgentUnavailable
from corral_web import HttpError, decode_json, reply

from ...app.interpreter import CreateContextRequest, Interpreter, RunRequest
from ...app.toolbox import AgentError
from .common import AGENT, DAEMON, PREFIX, sandbox_id
from .sessions import close_reason, serve_until_closed

routes = web.RouteTableDef()

CONTEXTS = PREFIX + "/process/interpreter/context"
FIRST_MESSAGE_SECONDS = 30.0
TIMEOUT_CLOSE_CODE = 4008
_STATUS = {"BAD_REQUEST": 400, "CWD_NOT_FOUND": 400, "CONTEXT_NOT_FOUND": 404}


def _interpreter(request: web.Request) -> Interpreter:
    return Interpreter(request.app[AGENT])


async def _agent(request: web.Request, call):  # type: ignore[no-untyped-def]
    try:
        return await call
    except AgentError as error:
        raise HttpError(_STATUS.get(error.code, 502), error.message, error.code, DAEMON) from None
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


@routes.post(CONTEXTS)
async def create_context(request: web.Request) -> web.Response:
    body = await decode_json(request, CreateContextRequest)
    return reply(await _agent(request, _interpreter(request).create(sandbox_id(request), body)))


@routes.get(CONTEXTS)
async def list_contexts(request: web.Request) -> web.Response:
    return reply({"contexts": await _agent(request, _interpreter(request).list(sandbox_id(request)))})


@routes.delete(CONTEXTS + "/{context_id}")
async def delete_context(request: web.Request) -> web.Response:
    context_id = request.match_info["context_id"]
    await _agent(request, _interpreter(request).delete(sandbox_id(request), context_id))
    return reply({"message": f"context {context_id} deleted"})


@routes.get(PREFIX + "/process/interpreter/execute")
async def execute(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    try:
        message = await ws.receive(timeout=FIRST_MESSAGE_SECONDS)
    except TimeoutError:
        await ws.close(code=1008, message=b"no run request received")
        return ws
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        await ws.close()
        return ws
    try:
        run = msgspec.json.decode(message.data, type=RunRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        await ws.close(code=1008, message=close_reason(f"invalid run request: {error}"))
        return ws
    close: list[tuple[int, str]] = [(1000, "")]

    async def pump() -> None:
        try:
            async for frame in _interpreter(request).run(sandbox_id(request), run):
                if frame["type"] != "end":
                    await ws.send_str(msgspec.json.encode(frame).decode())
                elif frame["status"] == "timeout":
                    close[0] = (TIMEOUT_CLOSE_CODE, "execution timed out")
                else:
                    await ws.send_str(msgspec.json.encode({"type": "control", "text": frame["status"]}).decode())
        except AgentError as error:
            close[0] = (1008 if error.code in _STATUS else 1011, error.message)
        except AgentUnavailable:
            close[0] = (1011, f"sandbox {sandbox_id(request)} is not running on this runner")

    code, reason = await serve_until_closed(ws, pump())
    if code == 1000:
        code, reason = close[0]
    await ws.close(code=code, message=close_reason(reason))
    return ws
