"""Toolbox use cases: the public (Daytona) toolbox protocol translated into agent calls."""

from __future__ import annotations

import base64
from contextlib import aclosing
from typing import Any

import msgspec

from ..adapters.agent_link import AgentLink

MAX_RESULT_BYTES = 64 * 1024**2
"""`execute`/`code-run` answer with the whole output in one JSON body; beyond this it is cut (sessions
stream instead)."""


class ExecuteRequest(msgspec.Struct, kw_only=True):
    command: str
    cwd: str | None = None
    envs: dict[str, str] | None = None
    timeout: int | None = None


class CodeRunRequest(msgspec.Struct, kw_only=True):
    code: str
    language: str | None = None
    argv: list[str] | None = None
    envs: dict[str, str] | None = None
    timeout: int | None = None


class ExecResult(msgspec.Struct, kw_only=True):
    exit_code: int
    output: bytes
    timed_out: bool
    truncated: bool


class AgentError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def code_argv(request: CodeRunRequest) -> list[str]:
    language = (request.language or "python").lower()
    argv = request.argv or []
    if language == "python":
        return ["python3", "-u", "-c", request.code, *argv]
    if language == "javascript":
        return ["node", "-e", request.code, "--", *argv]
    raise ValueError(f"language {language!r} is not supported here (python, javascript)")


class Toolbox:
    def __init__(self, agent: AgentLink):
        self._agent = agent

    async def exec(self, sandbox_id: str, request: dict[str, Any]) -> ExecResult:
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async with aclosing(self._agent.call(sandbox_id, {"op": "exec", **request})) as frames:
            async for frame in frames:
                kind = frame.get("type")
                if kind == "output":
                    data = base64.b64decode(frame["data"])
                    if size + len(data) > MAX_RESULT_BYTES:
                        data = data[: max(0, MAX_RESULT_BYTES - size)]
                        truncated = True
                    size += len(data)
                    chunks.append(data)
                elif kind == "exit":
                    return ExecResult(exit_code=int(frame["exitCode"]), output=b"".join(chunks),
                                      timed_out=bool(frame.get("timedOut")), truncated=truncated)
                elif kind == "error":
                    raise AgentError(str(frame.get("code", "AGENT_ERROR")), str(frame.get("message", "")))
        raise AgentError("AGENT_DISCONNECTED", "the sandbox agent closed the connection before the command ended")

    async def execute(self, sandbox_id: str, request: ExecuteRequest) -> ExecResult:
        return await self.exec(sandbox_id, {"command": request.command, "cwd": request.cwd, "env": request.envs,
                                            "timeout": request.timeout or None})

    async def code_run(self, sandbox_id: str, request: CodeRunRequest) -> ExecResult:
        return await self.exec(sandbox_id, {"argv": code_argv(request), "env": request.envs,
                                            "timeout": request.timeout or None})

    async def info(self, sandbox_id: str) -> dict[str, Any]:
        return await self._agent.ping(sandbox_id, timeout=5.0)
