"""An aiohttp connector whose connections are agent tunnels: HTTP (and WebSockets) to a port on a
sandbox's loopback, with aiohttp's keep-alive pool.

Requests go to `http://{sandbox_id}:{port}/...`: the URL's host names the sandbox and its port the
port inside it, so the pool keys connections by sandbox and port. Each new connection is one agent
`tunnel` (opened without counting as activity: the proxy reports preview traffic itself, and an idle
pooled connection must not keep a sandbox awake). Callers set `Host` themselves.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.client_proto import ResponseHandler

from corral_agent.client import AgentError, AgentUnavailable, PortClosed, ProtocolViolation

from .agent_link import AgentLink

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace


class PortClosedError(aiohttp.ClientConnectionError):
    """Nothing listens on the port inside the sandbox."""

    def __init__(self, sandbox_id: str, port: int):
        super().__init__(f"nothing is listening on port {port} in the sandbox")
        self.sandbox_id = sandbox_id
        self.port = port


class SandboxUnreachableError(aiohttp.ClientConnectionError):
    """The sandbox's agent does not answer (the sandbox is not running here)."""


class TunnelConnector(aiohttp.BaseConnector):
    def __init__(self, agent: AgentLink, *, limit: int = 1024, limit_per_host: int = 64,
                 keepalive_timeout: float = 15.0):
        super().__init__(limit=limit, limit_per_host=limit_per_host, keepalive_timeout=keepalive_timeout)
        self._agent = agent

    async def _create_connection(self, req: ClientRequest, traces: list[Trace],
                                 timeout: aiohttp.ClientTimeout) -> ResponseHandler:
        sandbox_id, port = req.host, req.port or 80
        try:
            sock = await self._agent.tunnel_socket(sandbox_id, port, activity=False)
        except PortClosed:
            raise PortClosedError(sandbox_id, port) from None
        except (AgentUnavailable, ProtocolViolation, AgentError, OSError) as error:
            raise SandboxUnreachableError(f"sandbox {sandbox_id} is not reachable: {error}") from None
        try:
            _, protocol = await asyncio.get_running_loop().create_unix_connection(self._factory, sock=sock)
        except BaseException:
            sock.close()
            raise
        return protocol  # type: ignore[return-value]
