"""The code interpreter: stateful Python contexts, translated into the agent's `interpreter_*` ops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import msgspec

from ..adapters.agent_link import AgentLink
from .toolbox import AgentError

DEFAULT_TIMEOUT_SECONDS = 600
"""What a run may take when the request names no timeout (the SDK documents 10 minutes); 0 = none."""
LANGUAGES = ("python",)


class CreateContextRequest(msgspec.Struct, kw_only=True):
    cwd: str | None = None
    language: str | None = None


class RunRequest(msgspec.Struct, kw_only=True, rename="camel"):
    code: str
    context_id: str | None = None
    envs: dict[str, str] | None = None
    timeout: int | float | None = None


class Interpreter:
    def __init__(self, agent: AgentLink):
        self._agent = agent

    async def _frames(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async with aclosing(self._agent.call(sandbox_id, request)) as frames:
            async for frame in frames:
                if frame.get("type") == "error":
                    raise AgentError(str(frame.get("code", "AGENT_ERROR")), str(frame.get("message", "")))
                yield frame

    async def _result(self, sandbox_id: str, request: dict[str, Any]) -> dict[str, Any]:
        async with aclosing(self._frames(sandbox_id, request)) as frames:
            async for frame in frames:
                if frame.get("type") == "result":
                    return frame
        raise AgentError("AGENT_DISCONNECTED", "the sandbox agent closed the connection before answering")

    async def create(self, sandbox_id: str, request: CreateContextRequest) -> dict[str, Any]:
        if request.language is not None and request.language.lower() not in LANGUAGES:
            raise AgentError("BAD_REQUEST", f"language {request.language!r} is not supported (python)")
        result = await self._result(sandbox_id, {"op": "interpreter_create", "cwd": request.cwd or None})
        return dict(result["context"])

    async def list(self, sandbox_id: str) -> list[dict[str, Any]]:
        return list((await self._result(sandbox_id, {"op": "interpreter_list"}))["contexts"])

    async def delete(self, sandbox_id: str, context_id: str) -> None:
        await self._result(sandbox_id, {"op": "interpreter_delete", "id": context_id})

    async def run(self, sandbox_id: str, request: RunRequest) -> AsyncIterator[dict[str, Any]]:
        """The run's messages in the SDK's shape (`stdout`, `stderr`, `error`), then one
        `{"type": "end", "status": "completed" | "timeout"}`."""
        timeout = DEFAULT_TIMEOUT_SECONDS if request.timeout is None else request.timeout
        call = {"op": "interpreter_run", "code": request.code, "contextId": request.context_id or None,
                "envs": request.envs or {}, "timeout": timeout or None}
        async with aclosing(self._frames(sandbox_id, call)) as frames:
            async for frame in frames:
                kind = frame.get("type")
                if kind in ("stdout", "stderr"):
                    yield {"type": kind, "text": frame.get("text", "")}
                elif kind == "exception":
                    yield {"type": "error", "name": frame.get("name", ""), "value": frame.get("value", ""),
                           "traceback": frame.get("traceback", "")}
                elif kind == "result":
                    yield {"type": "end", "status": frame.get("status", "completed")}
                    return
        raise AgentError("AGENT_DISCONNECTED", "the sandbox agent closed the connection during the run")
