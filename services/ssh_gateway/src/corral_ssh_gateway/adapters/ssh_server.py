"""The SSH server (asyncssh): the user name is the access token; no password or key is asked for.

A refused login sees why (an authentication banner and the disconnect reason), then the connection
closes. A granted one gets sessions (shell, exec, sftp) and direct TCP forwards to the sandbox's own
loopback; remote forwards, agent and X11 forwarding are refused.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

import asyncssh

from ..app.access import Gatekeeper, Refused
from ..app.ports import SandboxLink, Unreachable
from ..app.sessions import Session, Sessions
from ..domain.forwarding import forward_refusal
from .ssh_channels import SessionChannel, TunnelChannel

log = logging.getLogger(__name__)

SERVER_VERSION = "Corral"
DISCONNECT_GRACE = 1.0


class GatewayServer(asyncssh.SSHServer):
    def __init__(self, gatekeeper: Gatekeeper, sessions: Sessions, link: SandboxLink):
        self._gatekeeper = gatekeeper
        self._sessions = sessions
        self._link = link
        self._conn: asyncssh.SSHServerConnection | None = None
        self._session: Session | None = None
        self._address = ""
        self._port = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername") or ("", 0)
        self._address, self._port = str(peer[0]), int(peer[1])

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._sessions.end(self._session, "client" if exc is None else f"error: {exc}"[:200])

    async def begin_auth(self, username: str) -> bool:
        assert self._conn is not None
        try:
            grant = await self._gatekeeper.admit(
                username, session_id=str(uuid.uuid4()), address=self._address, port=self._port,
                client_version=str(self._conn.get_extra_info("client_version") or ""), notify=self._banner)
        except Refused as refused:  # the client shows the disconnect reason (at any log level)
            self._conn.disconnect(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, f"Corral: {refused.message}")
            return True
        self._session = self._sessions.begin(grant, self._disconnect)
        if self._conn.is_closed():  # the client left while the login was decided (a sandbox starting, say)
            self._sessions.end(self._session, "client")
            return True
        log.info("SSH session %s: %s to sandbox %s", grant.session_id, self._address, grant.sandbox_id)
        return False

    def _banner(self, message: str) -> None:
        assert self._conn is not None
        try:
            self._conn.send_auth_banner(f"Corral: {message}\n")
        except OSError:
            pass

    def _disconnect(self, message: str) -> None:
        """The channels have told the client why (on stderr); the connection follows a moment later, so
        their last bytes are not cut off by the disconnect."""
        conn = self._conn
        if conn is not None:
            asyncio.get_running_loop().call_later(
                DISCONNECT_GRACE, conn.disconnect, asyncssh.DISC_BY_APPLICATION, f"Corral: {message}")

    # no authentication method: a token either logs in at begin_auth or the connection is closed
    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def session_requested(self) -> Any:
        if self._session is None:
            return False
        return SessionChannel(self._session, self._link)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> Any:
        session = self._session
        if session is None:
            return False
        refusal = forward_refusal(dest_host, dest_port)
        record = session.channel("forward", f"{dest_host}:{dest_port}")
        if refusal is not None:
            record.refused = refusal
            session.finish(record)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, refusal)
        return self._open_tunnel(session, dest_port, record)

    async def _open_tunnel(self, session: Session, port: int, record: Any) -> TunnelChannel:
        grant = session.grant
        try:
            tunnel = await self._link.tunnel(grant.runner_id, grant.sandbox_id, port)
        except Unreachable as failure:
            record.refused = failure.message
            session.finish(record)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, failure.message) from None
        return TunnelChannel(tunnel, session, record)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False  # remote forwarding (-R) is not offered

    def unix_connection_requested(self, dest_path: str) -> bool:
        return False


async def listen(host: str, port: int, key: asyncssh.SSHKey,
                 server: Callable[[], GatewayServer], login_timeout: float) -> asyncssh.SSHAcceptor:
    return await asyncssh.create_server(
        server, host, port, server_host_keys=[key], server_version=SERVER_VERSION, encoding=None,
        line_editor=False, agent_forwarding=False, x11_forwarding=False, allow_scp=False,
        login_timeout=login_timeout, keepalive_interval=30, keepalive_count_max=4, reuse_address=True)
