"""Host-side asyncio client of the agent protocol, for the runner (Python 3.11).

Not part of the zipapp and never imported by the agent. One request per connection:

    async with contextlib.aclosing(call(path, {"op": "exec", "command": "ls"})) as frames:
        async for frame in frames:
            ...  # {"type": "output", "data": b64} ... then {"type": "exit", ...} or {"type": "error", ...}

Leaving the loop early (or cancelling) closes the connection, which makes the agent kill the
exec's process group.
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing

from .errors import PORT_CLOSED, AgentError
from .framing import (
    MUX_EOF,
    MUX_HEADER_BYTES,
    MUX_SIGNAL,
    MUX_STDIN,
    HEADER_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    FrameError,
    decode_body,
    encode_frame,
    frame_length,
    encode_mux,
    mux_header,
)

FINAL_FRAME_TYPES = frozenset({"exit", "error", "pong", "result"})
"""A reply ends with one of these; one-shot ops answer with a single `result` frame."""

__all__ = ["AgentError", "AgentStream", "AgentUnavailable", "ExecStream", "PortClosed", "ProtocolViolation", "call",
           "open_exec_stream", "open_stream", "open_tunnel", "ping", "tunnel_socket"]


class AgentUnavailable(Exception):
    """No agent answered: cannot connect, or the connection ended before a final frame."""


class ProtocolViolation(Exception):
    """The agent sent bytes that are not frames of the protocol."""


class PortClosed(AgentError):
    """`tunnel`: nothing listens on the port on the sandbox's loopback."""

    def __init__(self, port: int, message: str = ""):
        super().__init__(PORT_CLOSED, message or f"nothing is listening on port {port} in the sandbox")
        self.port = port


async def call(socket_path: str, request: dict) -> AsyncIterator[dict]:
    """Send one request; yield every frame the agent sends until it closes the connection."""
    encoded = encode_frame(request)
    if len(encoded) - HEADER_BYTES > MAX_REQUEST_BYTES:
        raise ValueError(f"request of {len(encoded)} bytes exceeds the agent's limit of {MAX_REQUEST_BYTES}")
    try:
        reader, writer = await asyncio.open_unix_connection(socket_path)
    except OSError as error:
        raise AgentUnavailable(f"cannot connect to the agent at {socket_path}: {error}") from error
    try:
        writer.write(encoded)
        try:
            await writer.drain()
        except ConnectionError:
            pass  # the agent refused the request early; its error frame may still be readable
        final = False
        while True:
            frame = await _read_frame(reader, final)
            if frame is None:
                if not final:
                    raise AgentUnavailable("the agent closed the connection before a final frame")
                return
            final = frame.get("type") in FINAL_FRAME_TYPES
            yield frame
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def ping(socket_path: str, timeout: float = 5.0) -> dict:
    """The agent's pong (`version`, `pid`, `workdir`, `home`, `user`)."""

    async def pong() -> dict:
        async with aclosing(call(socket_path, {"op": "ping"})) as frames:
            async for frame in frames:
                if frame.get("type") == "pong":
                    return frame
                if frame.get("type") == "error":
                    raise AgentError(str(frame.get("code")), str(frame.get("message")))
                raise ProtocolViolation(f"unexpected reply to ping: {frame!r}")
        raise AgentUnavailable("no reply to ping")

    try:
        return await asyncio.wait_for(pong(), timeout)
    except asyncio.TimeoutError as error:
        raise AgentUnavailable(f"no pong from {socket_path} within {timeout}s") from error


async def _read_frame(reader: asyncio.StreamReader, after_final: bool) -> dict | None:
    """The next frame, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER_BYTES)
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise ProtocolViolation("the agent sent a truncated frame header") from None
        return None
    except ConnectionResetError:
        if after_final:  # the agent closed with our unread request bytes pending: same as EOF
            return None
        raise AgentUnavailable("the agent reset the connection") from None
    try:
        body = await reader.readexactly(frame_length(header, MAX_RESPONSE_BYTES))
        return decode_body(body)
    except asyncio.IncompleteReadError:
        raise ProtocolViolation("the agent sent a truncated frame") from None
    except FrameError as error:
        raise ProtocolViolation(str(error)) from None


class AgentStream:
    """A two-way conversation with the agent, for ops that stream after their request: uploads and
    downloads (raw bytes after the frames), PTYs and session input (frames both ways).

    Open with `await open_stream(path, request)`; always `close()` it (or use `async with`).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._final_seen = False

    async def send(self, message: dict) -> None:
        self.writer.write(encode_frame(message))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def half_close(self) -> None:
        """No more bytes from us; the agent still answers (its replies are read as usual)."""
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def recv(self) -> dict | None:
        """The next frame from the agent, or None at the end of the conversation."""
        frame = await _read_frame(self.reader, self._final_seen)
        if frame is not None and frame.get("type") in FINAL_FRAME_TYPES:
            self._final_seen = True
        return frame

    async def read_raw(self, size: int) -> bytes:
        """Up to `size` raw bytes (fewer at the end of the stream; b"" once it has ended)."""
        return await self.reader.read(size)

    async def read_exactly(self, size: int) -> bytes:
        try:
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as error:
            raise AgentUnavailable(f"the agent ended the stream {size - len(error.partial)} bytes early") from None

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass

    async def __aenter__(self) -> "AgentStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_stream(socket_path: str, request: dict) -> AgentStream:
    """Connect and send the request frame; the conversation continues on the returned stream."""
    try:
        reader, writer = await asyncio.open_unix_connection(socket_path, limit=1024 * 1024)
    except OSError as error:
        raise AgentUnavailable(f"cannot connect to the agent at {socket_path}: {error}") from error
    stream = AgentStream(reader, writer)
    try:
        await stream.send(request)
    except ConnectionError as error:
        await stream.close()
        raise AgentUnavailable(f"the agent dropped the connection: {error}") from error
    return stream


class ExecStream:
    """A running `exec_stream` (see the agent's exec_stream.py): mux frames both ways. Always `close()` it;
    closing before the exit frame makes the agent kill the process group."""

    def __init__(self, stream: AgentStream, pid: int) -> None:
        self.stream = stream
        self.pid = pid

    async def write_stdin(self, data: bytes) -> None:
        await self.stream.send_raw(encode_mux(MUX_STDIN, data))

    async def close_stdin(self) -> None:
        await self.stream.send_raw(encode_mux(MUX_EOF))

    async def signal(self, name: str) -> None:
        await self.stream.send_raw(encode_mux(MUX_SIGNAL, name.encode("ascii", "replace")))

    async def read(self) -> tuple[int, bytes] | None:
        """The next (channel, payload): MUX_STDOUT, MUX_STDERR, then MUX_EXIT last; None if the agent
        ended the stream without an exit frame."""
        try:
            header = await self.stream.reader.readexactly(MUX_HEADER_BYTES)
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise ProtocolViolation("the agent sent a truncated mux header") from None
            return None
        except ConnectionResetError:
            return None
        try:
            channel, length = mux_header(header)
            return channel, await self.stream.reader.readexactly(length)
        except FrameError as error:
            raise ProtocolViolation(str(error)) from None
        except asyncio.IncompleteReadError:
            raise ProtocolViolation("the agent sent a truncated mux frame") from None

    async def close(self) -> None:
        await self.stream.close()


async def open_exec_stream(socket_path: str, request: dict) -> ExecStream:
    """Start an `exec_stream`; AgentError if the agent refused it (bad request, cannot start)."""
    stream = await open_stream(socket_path, {**request, "op": "exec_stream"})
    try:
        frame = await stream.recv()
    except BaseException:
        await stream.close()
        raise
    if frame is None or frame.get("type") != "started":
        await stream.close()
        if frame is not None and frame.get("type") == "error":
            raise AgentError(str(frame.get("code")), str(frame.get("message")))
        raise AgentUnavailable(f"unexpected reply to exec_stream: {frame!r}")
    return ExecStream(stream, int(frame.get("pid", 0)))


async def open_tunnel(socket_path: str, port: int, timeout: float = 10.0, *, activity: bool = True) -> AgentStream:
    """A raw byte pipe to `port` on the sandbox's loopback (the agent's `tunnel` op).

    Returns the stream once the agent said `connected`: from then on `send_raw`/`read_raw` carry the
    TCP stream, `half_close()` sends EOF to the sandbox side, and `read_raw` returns b"" once the
    sandbox side has ended. Raises `PortClosed` when nothing listens, `AgentError` for other
    refusals, `AgentUnavailable` when no agent answers within `timeout` seconds. With
    `activity=False` the open tunnel does not count as client activity (the caller reports it)."""
    sock = await tunnel_socket(socket_path, port, timeout, activity=activity)
    try:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1024 * 1024)
    except BaseException:
        sock.close()
        raise
    return AgentStream(reader, writer)


async def tunnel_socket(socket_path: str, port: int, timeout: float = 10.0, *, activity: bool = True) -> socket.socket:
    """The agent's `tunnel` handshake on a fresh non-blocking unix socket, which is returned once the
    agent said `connected` (nothing past that frame has been read from it): hand it to
    `loop.create_unix_connection(factory, sock=...)`. Raises as `open_tunnel`."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    request: dict = {"op": "tunnel", "port": port}
    if not activity:
        request["activity"] = False
    try:
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, socket_path)
                await loop.sock_sendall(sock, encode_frame(request))
                header = await _sock_read_exactly(loop, sock, HEADER_BYTES)
                body = await _sock_read_exactly(loop, sock, frame_length(header, MAX_RESPONSE_BYTES)) if header else b""
        except TimeoutError:
            raise AgentUnavailable(f"the agent did not open the tunnel to port {port} within {timeout}s") from None
        except FrameError as error:
            raise ProtocolViolation(str(error)) from None
        except OSError as error:
            raise AgentUnavailable(f"cannot reach the agent at {socket_path}: {error}") from error
        if not header:
            raise AgentUnavailable("the agent closed the connection before opening the tunnel")
        try:
            frame = decode_body(body)
        except FrameError as error:
            raise ProtocolViolation(str(error)) from None
        if frame.get("type") == "connected":
            return sock
        code, message = str(frame.get("code") or ""), str(frame.get("message") or "")
        if frame.get("type") == "error" and code == PORT_CLOSED:
            raise PortClosed(port, message)
        if frame.get("type") == "error":
            raise AgentError(code or "AGENT_ERROR", message)
        raise ProtocolViolation(f"unexpected reply to tunnel: {frame!r}")
    except BaseException:
        sock.close()
        raise


async def _sock_read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes (never more: what follows belongs to the caller), b"" at a clean EOF
    before the first byte; FrameError if the stream ends midway."""
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            if not data:
                return b""
            raise FrameError(f"the agent ended the stream after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)
