"""Reaching the agent of a sandbox through the unix socket in its run directory.

The run directory is the sandbox's to write (its agent creates the socket there, as any user), so
whatever is named `agent.sock` there is untrusted: a sandbox could put a symbolic link to another
sandbox's socket (or any socket of the host) in its place. The socket is therefore opened without
following links (`O_PATH | O_NOFOLLOW`, relative to the directory), checked to be a socket, and
reached through that very inode (`/proc/self/fd/<fd>`): no name is resolved twice.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

from corral_agent import client

from ..domain.isolation import AGENT_SOCKET

class AgentLink:
    def __init__(self, runs_dir: Path):
        self.runs_dir = runs_dir

    def run_dir(self, sandbox_id: str) -> Path:
        return self.runs_dir / sandbox_id

    @asynccontextmanager
    async def _socket(self, sandbox_id: str) -> AsyncIterator[str]:
        """A connectable path to the socket inode itself (short, whatever the run directory's length);
        anything else in its place (a link, a file, nothing) is an unavailable agent."""
        try:
            directory = os.open(self.run_dir(sandbox_id), os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as error:
            raise client.AgentUnavailable(f"no run directory for {sandbox_id}: {error}") from error
        try:
            fd = os.open(AGENT_SOCKET, os.O_PATH | os.O_NOFOLLOW, dir_fd=directory)
        except OSError as error:
            raise client.AgentUnavailable(f"no agent socket for {sandbox_id}: {error}") from error
        finally:
            os.close(directory)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise client.AgentUnavailable(f"the agent socket of {sandbox_id} is not a socket (a link?)")
            yield f"/proc/self/fd/{fd}"
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

    async def tunnel_socket(self, sandbox_id: str, port: int, *, activity: bool = True) -> socket.socket:
        """The same tunnel as a connected raw socket (`client.tunnel_socket`), for transports that wrap
        it themselves (the preview connector)."""
        async with self._socket(sandbox_id) as path:
            return await client.tunnel_socket(path, port, activity=activity)

    async def activity(self, sandbox_id: str) -> int:
        """How many client jobs run in the sandbox now (execs, session commands, open terminals, tunnels)."""
        async with self._socket(sandbox_id) as path:
            async with aclosing(client.call(path, {"op": "activity"})) as frames:
                async for frame in frames:
                    if frame.get("type") == "result":
                        return int(frame.get("running", 0))
        return 0
