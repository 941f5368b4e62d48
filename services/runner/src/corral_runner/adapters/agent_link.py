"""Reaching the agent of a sandbox through the unix socket in its run directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

from corral_agent import client

from ..domain.isolation import AGENT_SOCKET

_MAX_SUN_PATH = 100


class AgentLink:
    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir

    def run_dir(self, sandbox_id: str) -> Path:
        return self.runs_dir / sandbox_id

    @asynccontextmanager
    async def _socket(self, sandbox_id: str) -> AsyncIterator[str]:
        """A connectable path: unix socket paths are limited to ~108 bytes, so a long run directory is
        reached through `/proc/self/fd/<dir fd>/agent.sock`."""
        path = self.run_dir(sandbox_id) / AGENT_SOCKET
        if len(str(path)) <= _MAX_SUN_PATH:
            yield str(path)
            return
        fd = os.open(self.run_dir(sandbox_id), os.O_PATH | os.O_DIRECTORY)
        try:
            yield f"/proc/self/fd/{fd}/{AGENT_SOCKET}"
        finally:
            os.close(fd)

    async def ping(self, sandbox_id: str, timeout: float = 1.0) -> dict[str, Any]:
        async with self._socket(sandbox_id) as path:
            return await client.ping(path, timeout=timeout)

    async def call(self, sandbox_id: str, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async with self._socket(sandbox_id) as path:
            async with aclosing(client.call(path, request)) as frames:
                async for frame in frames:
                    yield frame

    async def open_stream(self, sandbox_id: str, request: dict[str, Any]) -> client.AgentStream:
        """A two-way conversation (`client.open_stream`); the caller closes it."""
        async with self._socket(sandbox_id) as path:
            return await client.open_stream(path, request)

    async def open_exec_stream(self, sandbox_id: str, request: dict[str, Any]) -> client.ExecStream:
        """A started `exec_stream` (stdin, stdout, stderr, exit as mux frames); the caller closes it."""
        async with self._socket(sandbox_id) as path:
            return await client.open_exec_stream(path, request)

    async def open_tunnel(self, sandbox_id: str, port: int) -> client.AgentStream:
        """A raw byte pipe to `port` on the sandbox's loopback (`client.open_tunnel`); the caller
        closes it. Raises `client.PortClosed` when nothing listens there, `client.AgentUnavailable`
        when the sandbox's agent does not answer."""
        async with self._socket(sandbox_id) as path:
            return await client.open_tunnel(path, port)

    async def activity(self, sandbox_id: str) -> int:
        """How many client jobs run in the sandbox now (execs, session commands, open terminals, tunnels)."""
        async with self._socket(sandbox_id) as path:
            async with aclosing(client.call(path, {"op": "activity"})) as frames:
                async for frame in frames:
                    if frame.get("type") == "result":
                        return int(frame.get("running", 0))
        return 0
