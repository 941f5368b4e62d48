"""Toolbox: process sessions (`/process/session/...`): long-lived shells, their commands and logs.

Status codes are the ones the SDK declares: 201 create, 204 delete and input, 202 async exec, 200
otherwise. Errors carry `source: DAYTONA_DAEMON` so that SESSION_ENDED and COMMAND_ALREADY_COMPLETED
(410) become the SDK's own exception classes. Following a log is a WebSocket (what the SDK opens),
or a chunked `application/octet-stream` body for a plain GET.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import msgspec
from aiohttp import WSMsgType, web

from corral_agent.client import AgentUnavailable
from corral_web import HttpError, decode_json, reply

from ...app.sessions import (
    IN_MEMORY_LOG_BYTES,
    CreateSessionRequest,
    ExecuteRequest,
    InputRequest,
    Sessions,
    split_log,
    stream_split_log,
)
from ...app.toolbox import AgentError
from .common import AGENT, DAEMON, PREFIX, sandbox_id

routes = web.RouteTableDef()

SESSIONS = PREFIX + "/process/session"
COMMAND = SESSIONS + "/{session_id}/command/{command_id}"
ENTRYPOINT = "entrypoint"
"""The image's own entrypoint is not run in a Corral sandbox (the agent is the container's command), so
its session exists and is always empty."""

_STATUS = {"BAD_REQUEST": 400, "SESSION_NOT_FOUND": 404, "COMMAND_NOT_FOUND": 404, "SESSION_EXISTS": 409,
           "SESSION_ENDED": 410, "COMMAND_ALREADY_COMPLETED": 410}
T = TypeVar("T")


def _sessions(request: web.Request) -> Sessions:
    return Sessions(request.app[AGENT])


async def _agent(request: web.Request, call: Awaitable[T]) -> T:
    """Await an agent call; its failures become the toolbox's JSON errors."""
    try:
        return await call
    except AgentError as error:
        raise HttpError(_STATUS.get(error.code, 502), error.message, error.code, DAEMON) from None
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


@routes.post(SESSIONS)
async def create_session(request: web.Request) -> web.Response:
    body = await decode_json(request, CreateSessionRequest, empty_ok=False)
    if not body.session_id:
        raise HttpError(400, "sessionId must not be empty", "BAD_REQUEST", DAEMON)
    await _agent(request, _sessions(request).create(sandbox_id(request), body.session_id))
    return reply({"sessionId": body.session_id}, status=201)


@routes.get(SESSIONS)
async def list_sessions(request: web.Request) -> web.Response:
    return reply(await _agent(request, _sessions(request).list(sandbox_id(request))))


@routes.get(SESSIONS + "/" + ENTRYPOINT)
async def entrypoint_session(request: web.Request) -> web.Response:
    return reply({"sessionId": ENTRYPOINT, "commands": []})


@routes.get(SESSIONS + "/" + ENTRYPOINT + "/logs")
async def entrypoint_logs(request: web.Request) -> web.StreamResponse:
    if not _follow(request):
        return reply({"output": "", "stdout": "", "stderr": ""})
    return await _stream_log(request, _no_chunks())


@routes.get(SESSIONS + "/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    return reply(await _agent(request, _sessions(request).get(sandbox_id(request), request.match_info["session_id"])))


@routes.delete(SESSIONS + "/{session_id}")
async def delete_session(request: web.Request) -> web.Response:
    await _agent(request, _sessions(request).delete(sandbox_id(request), request.match_info["session_id"]))
    return web.Response(status=204)


@routes.post(SESSIONS + "/{session_id}/exec")
async def execute(request: web.Request) -> web.StreamResponse:
    body = await decode_json(request, ExecuteRequest, empty_ok=False)
    sessions, sid, session_id = _sessions(request), sandbox_id(request), request.match_info["session_id"]
    executed = await _agent(request, sessions.execute(sid, session_id, body))
    if executed.exit_code is None:
        return reply({"cmdId": executed.cmd_id}, status=202)
    head = {"cmdId": executed.cmd_id, "exitCode": executed.exit_code}
    if executed.log is not None:
        return reply({**head, **split_log(executed.log)})
    reader = sessions.log_reader(sid, session_id, executed.cmd_id, executed.log_size)
    return await _stream_json(request, head, reader)


@routes.get(COMMAND)
async def get_command(request: web.Request) -> web.Response:
    return reply(await _agent(request, _sessions(request).command(sandbox_id(request), *_command(request))))


@routes.post(COMMAND + "/input")
async def send_input(request: web.Request) -> web.Response:
    body = await decode_json(request, InputRequest, empty_ok=False)
    await _agent(request, _sessions(request).send_input(sandbox_id(request), *_command(request), body.data))
    return web.Response(status=204)


@routes.get(COMMAND + "/logs")
async def command_logs(request: web.Request) -> web.StreamResponse:
    sessions, sid = _sessions(request), sandbox_id(request)
    session_id, command_id = _command(request)
    follow = _follow(request)
    size, chunks = await _agent(request, sessions.open_log(sid, session_id, command_id, follow=follow))
    if follow:
        return await _stream_log(request, chunks)
    if size <= IN_MEMORY_LOG_BYTES:
        return reply(split_log(await _agent(request, _collect(chunks))))
    first: list[AsyncIterator[bytes]] = [chunks]

    def reader() -> AsyncIterator[bytes]:  # the pass already open, then fresh ones
        return first.pop() if first else sessions.log_reader(sid, session_id, command_id, size)()

    return await _stream_json(request, {}, reader)


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    async with aclosing(chunks) as stream:  # type: ignore[type-var]
        return b"".join([chunk async for chunk in stream])


def _command(request: web.Request) -> tuple[str, str]:
    return request.match_info["session_id"], request.match_info["command_id"]


def _follow(request: web.Request) -> bool:
    return request.query.get("follow", "").lower() in ("true", "1")


async def _stream_json(request: web.Request, head: dict[str, Any],
                       reader: Callable[[], AsyncIterator[bytes]]) -> web.StreamResponse:
    """A JSON object `head` + `{output, stdout, stderr}`, written as the log is read (large logs)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(msgspec.json.encode(head)[:-1] + (b"," if head else b""))
    await stream_split_log(response.write, reader)
    await response.write(b"}")
    await response.write_eof()
    return response


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover  (makes this an async generator)


async def _stream_log(request: web.Request, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    """The raw marked log as it grows: WebSocket binary frames closed with 1000, or a chunked body."""
    async with aclosing(chunks) as stream:  # type: ignore[type-var]
        if request.headers.get("Upgrade", "").lower() != "websocket":
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            async for chunk in stream:
                await response.write(chunk)
            await response.write_eof()
            return response
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)

        async def pump() -> None:
            async for chunk in stream:
                await ws.send_bytes(chunk)

        code, reason = await serve_until_closed(ws, pump())
        await ws.close(code=code, message=close_reason(reason))
        return ws


def close_reason(text: str) -> bytes:
    """A WebSocket close reason: at most 123 bytes of UTF-8."""
    return text.encode()[:120].decode(errors="ignore").encode()


async def serve_until_closed(ws: web.WebSocketResponse, work: Awaitable[None]) -> tuple[int, str]:
    """Run `work` until it ends or the client closes; the close code and reason to send."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(ws.receive())
    try:
        while True:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                break
            message = watch.result()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return 1000, ""
            watch = asyncio.ensure_future(ws.receive())  # anything the client sends is ignored
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    error = task.exception()
    if error is None:
        return 1000, ""
    if isinstance(error, (AgentError, AgentUnavailable)):
        return 1011, f"log stream failed: {error}"
    raise error
