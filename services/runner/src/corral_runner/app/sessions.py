"""Process sessions: the toolbox's session protocol translated into the agent's `session_*` ops.

A command's log arrives from the agent as the marked byte stream of Daytona's format
(`\\x01\\x01\\x01` before stdout, `\\x02\\x02\\x02` before stderr). Follow mode passes it on untouched;
the JSON answers (`logs`, sync `exec`) split it into `output`, `stdout` and `stderr`. A log small
enough is split in memory; a larger one is streamed into the JSON body in three passes over the
agent's copy, so no log size costs the runner more than a few chunks of memory.
"""

from __future__ import annotations

import base64
import codecs
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import msgspec

from ..adapters.agent_link import AgentLink
from .toolbox import AgentError

IN_MEMORY_LOG_BYTES = 1024 * 1024
"""Logs up to this size are answered from memory; larger ones are streamed."""

_MARKER = re.compile(b"\x01\x01\x01|\x02\x02\x02")
_STREAMS = {b"\x01\x01\x01": "stdout", b"\x02\x02\x02": "stderr"}
_FIELDS = (("output", None), ("stdout", "stdout"), ("stderr", "stderr"))


class CreateSessionRequest(msgspec.Struct, kw_only=True, rename="camel"):
    session_id: str


class ExecuteRequest(msgspec.Struct, kw_only=True, rename="camel"):
    command: str
    run_async: bool | None = None
    async_: bool | None = msgspec.field(default=None, name="async")
    suppress_input_echo: bool | None = None


class InputRequest(msgspec.Struct, kw_only=True):
    data: str


class Executed(msgspec.Struct, kw_only=True):
    cmd_id: str
    exit_code: int | None = None
    log: bytes | None = None
    """The whole log when the agent sent it inline."""
    log_size: int = 0


class LogDemux:
    """Splits the marked stream into (stream, bytes) pieces; a marker may straddle two chunks."""

    def __init__(self) -> None:
        self._held = b""
        self._stream: str | None = None

    def feed(self, chunk: bytes, final: bool = False) -> list[tuple[str, bytes]]:
        data, self._held = self._held + chunk, b""
        pieces: list[tuple[str, bytes]] = []
        start = 0
        for match in _MARKER.finditer(data):
            if match.start() > start and self._stream is not None:
                pieces.append((self._stream, data[start:match.start()]))
            self._stream = _STREAMS[match.group()]
            start = match.end()
        rest = data[start:]
        keep = 0 if final else _partial_marker_length(rest)
        if keep:
            rest, self._held = rest[:-keep], rest[-keep:]
        if rest and self._stream is not None:  # bytes before the first marker are dropped
            pieces.append((self._stream, rest))
        return pieces


def _partial_marker_length(data: bytes) -> int:
    """How many trailing bytes could start a marker that the next chunk completes."""
    for length in (2, 1):
        if len(data) >= length and data[-length:] in (b"\x01" * length, b"\x02" * length):
            return length
    return 0


def split_log(log: bytes) -> dict[str, str]:
    """`{output, stdout, stderr}` of a whole log."""
    pieces = LogDemux().feed(log, final=True)
    return {field: b"".join(data for stream, data in pieces if keep in (None, stream)).decode(errors="replace")
            for field, keep in _FIELDS}


async def stream_split_log(write: Callable[[bytes], Awaitable[None]],
                           read_log: Callable[[], AsyncIterator[bytes]]) -> None:
    """Write `"output":"…","stdout":"…","stderr":"…"` (no braces), reading the log once per field."""
    for index, (field, keep) in enumerate(_FIELDS):
        await write(b'%s"%s":"' % (b"," if index else b"", field.encode()))
        demux = LogDemux()
        decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}
        async with aclosing(read_log()) as chunks:
            async for chunk in chunks:
                await _write_pieces(write, demux.feed(chunk), decoders, keep)
        await _write_pieces(write, demux.feed(b"", final=True), decoders, keep)
        tail = "".join(decoder.decode(b"", final=True) for decoder in decoders.values())
        await write(msgspec.json.encode(tail)[1:-1] + b'"')


async def _write_pieces(write, pieces, decoders, keep) -> None:  # type: ignore[no-untyped-def]
    text = "".join(decoders[stream].decode(data) for stream, data in pieces if keep in (None, stream))
    if text:
        await write(msgspec.json.encode(text)[1:-1])


class Sessions:
    """The session use cases of one runner; every call names its sandbox."""

    def __init__(self, agent: AgentLink):
        self._agent = agent

    async def _frames(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The agent's frames for one request; an error frame becomes AgentError."""
        async with aclosing(self._agent.call(sandbox_id, request)) as frames:
            async for frame in frames:
                if frame.get("type") == "error":
                    raise AgentError(str(frame.get("code", "AGENT_ERROR")), str(frame.get("message", "")))
                yield frame

    async def _result(self, sandbox_id: str, request: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with aclosing(self._frames(sandbox_id, request)) as replies:
            async for frame in replies:
                if frame.get("type") == "result":
                    return frames, frame
                frames.append(frame)
        raise AgentError("AGENT_DISCONNECTED", "the sandbox agent closed the connection before answering")

    async def create(self, sandbox_id: str, session_id: str) -> None:
        await self._result(sandbox_id, {"op": "session_create", "sessionId": session_id})

    async def list(self, sandbox_id: str) -> list[dict[str, Any]]:
        frames, _ = await self._result(sandbox_id, {"op": "session_list"})
        return _sessions(frames)

    async def get(self, sandbox_id: str, session_id: str) -> dict[str, Any]:
        frames, _ = await self._result(sandbox_id, {"op": "session_get", "sessionId": session_id})
        return _sessions(frames)[0]

    async def delete(self, sandbox_id: str, session_id: str) -> None:
        await self._result(sandbox_id, {"op": "session_delete", "sessionId": session_id})

    async def execute(self, sandbox_id: str, session_id: str, request: ExecuteRequest) -> Executed:
        run_async = bool(request.run_async or request.async_)
        _, result = await self._result(sandbox_id, {
            "op": "session_exec", "sessionId": session_id, "command": request.command, "async": run_async,
            "suppressInputEcho": bool(request.suppress_input_echo)})
        log = result.get("log")
        return Executed(cmd_id=str(result["cmdId"]), exit_code=result.get("exitCode"),
                        log=base64.b64decode(log) if isinstance(log, str) else None,
                        log_size=int(result.get("logSize") or 0))

    async def command(self, sandbox_id: str, session_id: str, command_id: str) -> dict[str, Any]:
        _, result = await self._result(sandbox_id, {"op": "session_command", "sessionId": session_id,
                                                    "commandId": command_id})
        return {"id": result["id"], "command": result["command"], "exitCode": result.get("exitCode")}

    async def send_input(self, sandbox_id: str, session_id: str, command_id: str, data: str) -> None:
        await self._result(sandbox_id, {"op": "session_input", "sessionId": session_id, "commandId": command_id,
                                        "data": data})

    async def open_log(self, sandbox_id: str, session_id: str, command_id: str, *, follow: bool,
                       limit: int | None = None) -> tuple[int, AsyncIterator[bytes]]:
        """The log's size (now) and its chunks; errors (unknown session or command) raise here, early."""
        request = {"op": "session_logs", "sessionId": session_id, "commandId": command_id, "follow": follow,
                   "limit": limit}
        frames = self._frames(sandbox_id, request)
        try:
            header = await anext(frames)
        except BaseException:
            await frames.aclose()
            raise
        return int(header.get("size") or 0), _chunks(frames)

    def log_reader(self, sandbox_id: str, session_id: str, command_id: str,
                   size: int) -> Callable[[], AsyncIterator[bytes]]:
        """A fresh pass over the first `size` bytes of the log, each time it is called."""

        async def read() -> AsyncIterator[bytes]:
            _, chunks = await self.open_log(sandbox_id, session_id, command_id, follow=False, limit=size)
            async with aclosing(chunks) as stream:
                async for chunk in stream:
                    yield chunk

        return read


async def _chunks(frames: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async with aclosing(frames) as replies:  # type: ignore[type-var]
        async for frame in replies:
            if frame.get("type") == "output":
                yield base64.b64decode(frame["data"])
            elif frame.get("type") == "result":
                return


def _sessions(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sessions: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame.get("type") == "session":
            sessions[frame["sessionId"]] = {"sessionId": frame["sessionId"], "commands": []}
        elif frame.get("type") == "command" and frame.get("sessionId") in sessions:
            sessions[frame["sessionId"]]["commands"].append(
                {"id": frame["id"], "command": frame["command"], "exitCode": frame.get("exitCode")})
    return list(sessions.values())
