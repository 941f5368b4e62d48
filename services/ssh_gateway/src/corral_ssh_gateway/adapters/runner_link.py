"""Reaching a sandbox through its runner's front, authenticated with the internal token (aiohttp).

- processes: the runner's internal exec WebSocket (`/internal/{id}/exec`), stdin/stdout/stderr apart;
- terminals: the runner's internal PTY WebSocket (`/internal/{id}/pty`) with the toolbox PTY protocol,
  resized and killed through the toolbox PTY routes;
- tunnels: the runner's tunnel WebSocket (`/toolbox/{id}/tunnel/{port}`), bytes both ways.

Runner URLs come from the runners' heartbeats in the `corral-runners` bucket (cached a few seconds).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from corral_agent.framing import MUX_EOF, MUX_EXIT, MUX_SIGNAL, MUX_STDERR, MUX_STDIN, MUX_STDOUT
from corral_contracts import codecs

from ..app.ports import Unreachable

log = logging.getLogger(__name__)

INTERNAL_TOKEN_HEADER = "X-Corral-Internal-Token"
EXIT_CONTROL_PROTOCOL = "X-Daytona-Pty-Exit-Control"
RUNNER_CACHE_SECONDS = 5.0
STDIN_CHUNK = 512 * 1024
CHANNELS = {MUX_STDOUT: "stdout", MUX_STDERR: "stderr", MUX_EXIT: "exit"}
_ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)

RunnerLookup = Callable[[str], Awaitable[bytes | None]]


class WsProcess:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self._ws = ws

    async def write_stdin(self, data: bytes) -> None:
        for start in range(0, len(data), STDIN_CHUNK):
            await self._ws.send_bytes(bytes((MUX_STDIN,)) + data[start:start + STDIN_CHUNK])

    async def close_stdin(self) -> None:
        await self._ws.send_bytes(bytes((MUX_EOF,)))

    async def signal(self, name: str) -> None:
        await self._ws.send_bytes(bytes((MUX_SIGNAL,)) + name.encode("ascii", "replace"))

    async def read(self) -> tuple[str, bytes] | None:
        while True:
            message = await self._ws.receive()
            if message.type == WSMsgType.BINARY and message.data:
                kind = CHANNELS.get(message.data[0])
                if kind is not None:
                    return kind, message.data[1:]
            elif message.type in _ENDED:
                return None

    async def close(self) -> None:
        await self._ws.close()


class WsTerminal:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, link: "RunnerLink", base: str, sandbox_id: str,
                 pty_id: str):
        self._ws = ws
        self._link = link
        self._base = base
        self._sandbox_id = sandbox_id
        self._pty_id = pty_id

    async def write(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def read(self) -> bytes | int | None:
        while True:
            message = await self._ws.receive()
            if message.type == WSMsgType.BINARY:
                return bytes(message.data)
            if message.type == WSMsgType.TEXT:
                try:
                    control = json.loads(message.data)
                except ValueError:
                    continue
                if control.get("status") == "exited":
                    return int(control.get("exitCode", 255))
                if control.get("status") == "error":
                    return None
            elif message.type in _ENDED:
                return _exit_from_close(message.extra)

    async def resize(self, cols: int, rows: int) -> None:
        await self._link.call("POST", self._base, f"/toolbox/{self._sandbox_id}/process/pty/{self._pty_id}/resize",
                              {"cols": cols, "rows": rows})

    async def close(self) -> None:
        await self._ws.close()
        await self._link.call("DELETE", self._base, f"/toolbox/{self._sandbox_id}/process/pty/{self._pty_id}")


class WsTunnel:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self._ws = ws

    async def write(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def read(self) -> bytes:
        while True:
            message = await self._ws.receive()
            if message.type == WSMsgType.BINARY:
                if message.data:
                    return bytes(message.data)
            elif message.type in _ENDED:
                return b""

    async def close(self) -> None:
        await self._ws.close()


def _exit_from_close(reason: Any) -> int | None:
    try:
        return int(json.loads(reason or "")["exitCode"])
    except (ValueError, KeyError, TypeError):
        return None


class RunnerLink:
    def __init__(self, runner_lookup: RunnerLookup, internal_token: str):
        self._lookup = runner_lookup
        self._headers = {INTERNAL_TOKEN_HEADER: internal_token}
        self._runners: dict[str, tuple[str, float]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
                                                  connector=aiohttp.TCPConnector(limit=1024))
        return self._session

    async def _base(self, runner_id: str) -> str:
        cached = self._runners.get(runner_id)
        if cached is not None and time.monotonic() - cached[1] < RUNNER_CACHE_SECONDS:
            return cached[0]
        value = await self._lookup(runner_id)
        if value is None:
            raise Unreachable(f"The runner hosting this sandbox ({runner_id}) is not available right now.")
        url = codecs.runner_heartbeat.decode(value).toolbox_url.rstrip("/")
        self._runners[runner_id] = (url, time.monotonic())
        return url

    async def _websocket(self, url: str, **options: Any) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self._client().ws_connect(url, headers=self._headers, autoping=True, heartbeat=None,
                                                   max_msg_size=0, **options)
        except aiohttp.WSServerHandshakeError as error:
            raise Unreachable(f"The sandbox refused the connection (HTTP {error.status}).") from None
        except (aiohttp.ClientError, OSError) as error:
            log.warning("runner unreachable at %s: %s", url, error)
            raise Unreachable("The runner hosting this sandbox is unreachable.") from None

    async def call(self, method: str, base: str, path: str, body: Any = None) -> int:
        try:
            async with self._client().request(method, base + path, json=body, headers=self._headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, OSError) as error:
            log.info("%s %s failed: %s", method, path, error)
            return 0

    async def process(self, runner_id: str, sandbox_id: str, request: dict[str, object]) -> WsProcess:
        base = await self._base(runner_id)
        ws = await self._websocket(_ws(base) + f"/internal/{sandbox_id}/exec")
        try:
            await ws.send_str(json.dumps(request))
            first = await ws.receive()
            reply = json.loads(first.data) if first.type == WSMsgType.TEXT else {}
        except (aiohttp.ClientError, OSError, ValueError):
            reply = {}
        if reply.get("type") != "started":
            await ws.close()
            raise Unreachable(_refusal(reply))
        return WsProcess(ws)

    async def terminal(self, runner_id: str, sandbox_id: str, *, term: str, cols: int, rows: int,
                       command: str | None) -> WsTerminal:
        base = await self._base(runner_id)
        pty_id = f"ssh-{uuid.uuid4().hex[:12]}"
        params = {"id": pty_id, "cols": str(cols), "rows": str(rows), "term": term}
        if command is not None:
            params["command"] = command
        ws = await self._websocket(_ws(base) + f"/internal/{sandbox_id}/pty", params=params,
                                   protocols=(EXIT_CONTROL_PROTOCOL,))
        first = await ws.receive()
        if first.type != WSMsgType.TEXT or json.loads(first.data).get("status") != "connected":
            await ws.close()
            raise Unreachable("The sandbox could not open a terminal.")
        return WsTerminal(ws, self, base, sandbox_id, pty_id)

    async def tunnel(self, runner_id: str, sandbox_id: str, port: int) -> WsTunnel:
        base = await self._base(runner_id)
        try:
            ws = await self._websocket(_ws(base) + f"/toolbox/{sandbox_id}/tunnel/{port}")
        except Unreachable as failure:
            if "HTTP 502" in failure.message:
                raise Unreachable(f"Nothing accepts connections on port {port} in the sandbox.") from None
            raise
        return WsTunnel(ws)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _ws(base: str) -> str:
    return "ws" + base[4:] if base.startswith("http") else base


def _refusal(reply: dict[str, Any]) -> str:
    code = reply.get("code")
    if code == "SANDBOX_NOT_RUNNING":
        return "The sandbox is not running."
    if code == "CWD_NOT_FOUND":
        return str(reply.get("message") or "The working directory does not exist.")
    return str(reply.get("message") or "The sandbox could not start the command.")
