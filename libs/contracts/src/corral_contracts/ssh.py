"""SSH access: the api's SshAccess events, and the request/reply messages of the ssh-gateway.

Tokens are recorded only as SHA-256 hashes (hex). Each token is one stream (aggregate id = `access_id`):
created, used (once per login), revoked or expired. Each SSH connection is one stream (aggregate id =
`session_id`): started at login, ended at logout with a summary of what ran. Both carry the sandbox id,
so a sandbox's timeline (and the audit log) can show them.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Union

import msgspec


class _SshAccessEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "ssh_access"
    sandbox_id: str
    access_id: str


class SshAccessCreated(_SshAccessEvent):
    organization_id: str
    token_hash: str
    """Hex SHA-256 of the token; the token itself is never recorded."""
    expires_at: datetime


class SshAccessUsed(_SshAccessEvent):
    """The token opened an SSH session (`session_id`) from `client_address`."""

    session_id: str
    client_address: str
    client_version: str = ""


class SshAccessRevoked(_SshAccessEvent):
    reason: str = "user"
    """`user` (DELETE …/ssh-access), or `sandbox-destroyed`."""


class SshAccessExpired(_SshAccessEvent):
    expires_at: datetime


class SshChannel(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One channel of an SSH session, for the audit trail."""

    kind: str
    """`shell`, `exec`, `sftp`, `subsystem` or `forward`."""
    command: str = ""
    """The exec command (cut to 1000 characters), the subsystem, or `host:port` of a forward."""
    pty: bool = False
    exit_status: int | None = None
    signal: str = ""
    opened_at: datetime | None = None
    seconds: float = 0.0
    bytes_in: int = 0
    """Bytes from the client into the sandbox."""
    bytes_out: int = 0
    """Bytes from the sandbox to the client."""
    refused: str = ""
    """Why the channel was refused (a forward to a closed port, say)."""


class SshSessionStarted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """An SSH login to the sandbox (through the ssh-gateway)."""

    __aggregate__: ClassVar[str] = "ssh_session"
    session_id: str
    sandbox_id: str
    access_id: str
    organization_id: str
    client_address: str
    client_port: int = 0
    client_version: str = ""
    gateway: str = ""


class SshSessionEnded(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "ssh_session"
    session_id: str
    sandbox_id: str
    access_id: str
    client_address: str
    seconds: float
    reason: str = ""
    """How it ended: `client` (disconnected), `revoked`, `sandbox-stopped`, `gateway-stopped`, or an error."""
    channels: list[SshChannel] = []
    """What ran, in order (the first 100 channels)."""
    more_channels: int = 0
    """Channels beyond those listed."""


SshEvent = Union[SshAccessCreated, SshAccessUsed, SshAccessRevoked, SshAccessExpired, SshSessionStarted, SshSessionEnded]


# --- request/reply: ssh-gateway -> api ------------------------------------------------------------


class SshLoginRequest(msgspec.Struct, frozen=True, kw_only=True):
    """May this token log in? On success the api records `SshAccessUsed` and `SshSessionStarted`."""

    token_hash: str
    session_id: str
    client_address: str
    client_port: int = 0
    client_version: str = ""
    gateway: str = ""


class SshLoginReply(msgspec.Struct, frozen=True, kw_only=True):
    granted: bool
    refusal: str = ""
    """When refused: `unknown`, `expired`, `revoked`, `sandbox-gone` or `unavailable`."""
    message: str = ""
    """For the client: why it was refused."""
    sandbox_id: str = ""
    access_id: str = ""
    organization_id: str = ""
    state: str = ""
    """The sandbox's state at login (`started`, `stopped`, ...)."""
    runner_id: str = ""
    user: str = ""
    expires_at: datetime | None = None


class SshWakeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Start the sandbox of a granted session (recorded with actor `ssh-gateway`), then answer once it is
    started or after `wait` seconds."""

    sandbox_id: str
    access_id: str
    session_id: str
    wait: float = 60.0


class SshWakeReply(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    runner_id: str = ""
    message: str = ""
    """Why it is not started, when it is not."""


class SshSessionReport(msgspec.Struct, frozen=True, kw_only=True):
    """The end of an SSH session, to be recorded as `SshSessionEnded` (idempotent per session)."""

    ended: SshSessionEnded


class SshSessionCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Is the access of these open sessions still valid? (Asked now and then by the gateway.)"""

    access_ids: list[str]


class SshSessionCheckReply(msgspec.Struct, frozen=True, kw_only=True):
    invalid: dict[str, str] = {}
    """access id -> why it is no longer valid (`revoked`, `expired`, `sandbox-gone`)."""


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool = True
