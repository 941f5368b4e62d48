"""Files in a sandbox (the toolbox's `/files/*`): the agent's `files.*` ops, as the sandbox user.

One-shot ops answer one `result` frame; listings arrive as `items` frames, passed on as they come.
File contents stream in raw chunks (4-byte length + bytes, a zero length ends; see the agent's
`files_transfer`), so neither an upload nor a download is ever held whole in the runner's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

from corral_agent.client import AgentStream, AgentUnavailable

from ..adapters.agent_link import AgentLink

END = b"\0\0\0\0"

STATUS_OF = {
    "FILE_NOT_FOUND": 404,
    "FILE_ACCESS_DENIED": 403,
    "INVALID_FILE_PATH": 400,
    "BAD_REQUEST": 400,
    "FILE_EXISTS": 409,
    "DIRECTORY_NOT_EMPTY": 409,
    "NO_SPACE": 413,
    "FILE_OPERATION_FAILED": 422,
}
"""The agent's error codes as HTTP statuses; anything else means the agent could not serve the op."""


class FileFailure(Exception):
    """An op the sandbox refused: `status` and `code` are what the client gets."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "statusCode": self.status, "code": self.code}


def failure_of(frame: dict[str, Any]) -> FileFailure:
    code = str(frame.get("code") or "AGENT_ERROR")
    message = str(frame.get("message") or code)
    if code == "UNKNOWN_OP":
        return FileFailure(502, "AGENT_OUTDATED", "The sandbox's agent predates file operations; restart the sandbox")
    return FileFailure(STATUS_OF.get(code, 502), code, message)


class Download:
    """An open file in the sandbox: `size` at open time, then `chunks()` once."""

    def __init__(self, stream: AgentStream, ready: dict[str, Any]):
        self._stream = stream
        self.path = str(ready.get("path", ""))
        self.size = int(ready.get("size", 0))

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as the agent reads them; FileFailure if reading fails midway."""
        stream = self._stream
        while length := int.from_bytes(await stream.read_exactly(4), "big"):
            yield await stream.read_exactly(length)
        final = await stream.recv()
        if final is None:
            raise AgentUnavailable("the agent ended the download without a result")
        if final.get("type") == "error":
            raise failure_of(final)


class Files:
    def __init__(self, agent: AgentLink):
        self._agent = agent

    async def items(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[Any]:
        """Every item of a listing op, as the agent sends them (errors come before the first item)."""
        async with aclosing(self._agent.call(sandbox_id, request)) as frames:
            async for frame in frames:
                kind = frame.get("type")
                if kind == "items":
                    for item in frame.get("items", ()):
                        yield item
                elif kind == "error":
                    raise failure_of(frame)
                elif kind == "result":
                    return
        raise AgentUnavailable("the agent closed the connection before its result")

    async def one(self, sandbox_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """The `result` frame of a one-shot op."""
        async with aclosing(self._agent.call(sandbox_id, request)) as frames:
            async for frame in frames:
                if frame.get("type") == "error":
                    raise failure_of(frame)
                if frame.get("type") == "result":
                    return frame
        raise AgentUnavailable("the agent closed the connection before its result")

    async def write(self, sandbox_id: str, path: str, chunks: AsyncIterable[bytes],
                    mode: str | None = None) -> dict[str, Any]:
        """Stream `chunks` into the file `path` (replaced atomically once complete); the agent's result.

        A refusal (FileFailure) may come before all chunks were consumed: the caller drops the rest.
        If `chunks` raises, the connection closes without the end chunk and the target stays as it was."""
        stream = await self._agent.open_stream(sandbox_id, {"op": "files.write", "path": path, "mode": mode})
        async with stream:
            ready = await stream.recv()
            if ready is None:
                raise AgentUnavailable("the agent closed the connection before it was ready")
            if ready.get("type") != "ready":
                raise failure_of(ready)
            reply = asyncio.ensure_future(stream.recv())  # an early refusal (disk full) stops the upload
            try:
                await _send_chunks(stream, chunks, reply)  # the source failing (client gone) propagates
                final = await reply
            finally:
                if not reply.done():
                    reply.cancel()
            if final is None:
                raise AgentUnavailable("the agent closed the connection during the upload")
            if final.get("type") == "error":
                raise failure_of(final)
            return final

    @asynccontextmanager
    async def reading(self, sandbox_id: str, path: str) -> AsyncIterator[Download]:
        """Open `path` for reading; FileFailure before anything is yielded if it cannot be read."""
        stream = await self._agent.open_stream(sandbox_id, {"op": "files.read", "path": path})
        async with stream:
            ready = await stream.recv()
            if ready is None:
                raise AgentUnavailable("the agent closed the connection before it was ready")
            if ready.get("type") != "ready":
                raise failure_of(ready)
            yield Download(stream, ready)


async def _send_chunks(stream: AgentStream, chunks: AsyncIterable[bytes], reply: asyncio.Future[Any]) -> None:
    """Forward `chunks`, then the end chunk; stop early once the agent has answered (a refusal) or hung up
    (its last frame, if any, tells why). An error of `chunks` itself propagates: no end chunk is sent."""
    writer = stream.writer
    async for chunk in chunks:
        if reply.done():
            return
        if chunk and not await _forward(writer, len(chunk).to_bytes(4, "big"), chunk):
            return
    await _forward(writer, END)


async def _forward(writer: asyncio.StreamWriter, *pieces: bytes) -> bool:
    try:
        for piece in pieces:
            writer.write(piece)
        await writer.drain()
        return True
    except ConnectionError:
        return False
