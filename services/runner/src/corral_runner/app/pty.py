"""Toolbox PTYs: the Daytona PTY calls translated into the agent's `pty_*` ops.

The PTYs themselves live in the agent (they outlive every WebSocket); the runner only relays. A
WebSocket client is one agent connection that is attached to the PTY (see corral_agent.pty_ops).
"""

from __future__ import annotations

import base64
import binascii
import json
from contextlib import aclosing
from typing import Any

import msgspec

from corral_agent.client import AgentStream, AgentUnavailable, ProtocolViolation

from ..adapters.agent_link import AgentLink

EXIT_CONTROL_PROTOCOL = "X-Daytona-Pty-Exit-Control"
"""Offered by clients that want the `exited` control frame before the close."""
ENVS_PROTOCOL_PREFIX = "X-Daytona-Pty-Envs~"
"""`X-Daytona-Pty-Envs~<base64url of the JSON env object, unpadded>`: the PTY's variables."""

_STATUS = {"PTY_NOT_FOUND": 404, "PTY_EXISTS": 409, "BAD_REQUEST": 400, "CWD_NOT_FOUND": 400, "UNAVAILABLE": 503}


class PtyCreateRequest(msgspec.Struct, kw_only=True):
    id: str
    cwd: str | None = None
    envs: dict[str, str] | None = None
    cols: int | None = None
    rows: int | None = None
    lazy_start: bool | None = msgspec.field(default=None, name="lazyStart")


class PtyResizeRequest(msgspec.Struct, kw_only=True):
    cols: int
    rows: int


class PtyFailure(Exception):
    """The agent refused or failed: `status` is the HTTP status for the toolbox client."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> PtyFailure:
        code = str(frame.get("code") or "AGENT_ERROR")
        return cls(_STATUS.get(code, 502), code, str(frame.get("message") or "the sandbox agent failed"))


class PtyExit(msgspec.Struct, frozen=True):
    exit_code: int
    signal: int | None = None

    def fields(self) -> dict[str, Any]:
        """`exitCode` (+ `exitReason` for a signal death): the control frame's and the close reason's."""
        out: dict[str, Any] = {"exitCode": self.exit_code}
        if self.signal is not None:
            out["exitReason"] = f"killed by signal {self.signal}"
        return out


def envs_from_protocols(protocols: list[str]) -> dict[str, str] | None:
    """The variables carried in the envs subprotocol, if offered; ValueError if it is malformed."""
    for protocol in protocols:
        if protocol.startswith(ENVS_PROTOCOL_PREFIX):
            encoded = protocol[len(ENVS_PROTOCOL_PREFIX):]
            try:
                envs = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise ValueError("the PTY envs subprotocol is not base64url JSON") from None
            if not isinstance(envs, dict) or not all(isinstance(v, str) for v in envs.values()):
                raise ValueError("the PTY envs subprotocol must hold an object of strings")
            return envs
    return None


class Attachment:
    """One client attached to a PTY: its output (bytes, then a `PtyExit`) and its keystrokes."""

    def __init__(self, stream: AgentStream, info: dict[str, Any]):
        self.stream = stream
        self.info = info

    async def read(self) -> bytes | PtyExit:
        """The next output, or the exit at the end; PtyFailure if the agent fails or goes away."""
        try:
            frame = await self.stream.recv()
        except (AgentUnavailable, ProtocolViolation, OSError) as error:
            raise PtyFailure(502, "AGENT_DISCONNECTED", f"lost the sandbox agent: {error}") from None
        if frame is None:
            raise PtyFailure(502, "AGENT_DISCONNECTED", "the sandbox agent ended the PTY stream")
        kind = frame.get("type")
        if kind == "output":
            return base64.b64decode(frame["data"])
        if kind == "exit":
            return PtyExit(int(frame["exitCode"]), frame.get("signal"))
        raise PtyFailure.from_frame(frame)

    async def write(self, data: bytes) -> None:
        await self.stream.send({"type": "input", "data": base64.b64encode(data).decode("ascii")})

    async def close(self) -> None:
        await self.stream.close()


class Ptys:
    def __init__(self, agent: AgentLink):
        self._agent = agent

    async def create(self, sandbox_id: str, body: PtyCreateRequest) -> dict[str, Any]:
        request = {"op": "pty_create", "id": body.id, "cwd": body.cwd, "envs": body.envs or {},
                   "cols": body.cols, "rows": body.rows, "lazyStart": bool(body.lazy_start)}
        return (await self._result(sandbox_id, request))["session"]  # type: ignore[no-any-return]

    async def list_sessions(self, sandbox_id: str) -> list[dict[str, Any]]:
        return (await self._result(sandbox_id, {"op": "pty_list"}))["sessions"]  # type: ignore[no-any-return]

    async def info(self, sandbox_id: str, session_id: str) -> dict[str, Any]:
        return (await self._result(sandbox_id, {"op": "pty_info", "id": session_id}))["session"]  # type: ignore[no-any-return]

    async def resize(self, sandbox_id: str, session_id: str, body: PtyResizeRequest) -> dict[str, Any]:
        request = {"op": "pty_resize", "id": session_id, "cols": body.cols, "rows": body.rows}
        return (await self._result(sandbox_id, request))["session"]  # type: ignore[no-any-return]

    async def kill(self, sandbox_id: str, session_id: str) -> None:
        await self._result(sandbox_id, {"op": "pty_kill", "id": session_id})

    async def create_and_attach(self, sandbox_id: str, body: PtyCreateRequest, command: str | None = None) -> Attachment:
        """`command`: the PTY runs it instead of an interactive shell (internal: `ssh -t host cmd`)."""
        request = {"op": "pty_create", "attach": True, "id": body.id, "cwd": body.cwd, "envs": body.envs or {},
                   "cols": body.cols, "rows": body.rows}
        if command is not None:
            request["command"] = command
        return await self._attach(sandbox_id, request)

    async def attach(self, sandbox_id: str, session_id: str) -> Attachment:
        return await self._attach(sandbox_id, {"op": "pty_attach", "id": session_id})

    async def _attach(self, sandbox_id: str, request: dict[str, Any]) -> Attachment:
        """Attached (the agent said so) before any WebSocket is accepted: refusals stay HTTP errors."""
        try:
            stream = await self._agent.open_stream(sandbox_id, request)
        except (AgentUnavailable, OSError):
            raise _not_running(sandbox_id) from None
        try:
            frame = await stream.recv()
        except (AgentUnavailable, ProtocolViolation, OSError):
            await stream.close()
            raise _not_running(sandbox_id) from None
        if frame is None or frame.get("type") != "attached":
            await stream.close()
            raise PtyFailure.from_frame(frame or {"code": "AGENT_DISCONNECTED", "message": "no reply from the agent"})
        return Attachment(stream, frame["session"])

    async def _result(self, sandbox_id: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            async with aclosing(self._agent.call(sandbox_id, request)) as frames:
                async for frame in frames:
                    if frame.get("type") == "result":
                        return frame
                    raise PtyFailure.from_frame(frame)
        except (AgentUnavailable, ProtocolViolation, OSError):
            raise _not_running(sandbox_id) from None
        raise _not_running(sandbox_id)


def _not_running(sandbox_id: str) -> PtyFailure:
    return PtyFailure(502, "SANDBOX_NOT_RUNNING", f"Sandbox {sandbox_id} is not running on this runner")
