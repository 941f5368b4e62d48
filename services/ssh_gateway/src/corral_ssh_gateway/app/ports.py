"""The ports the gateway's use cases need: the api (token decisions, records) and the sandbox (processes,
terminals, tunnels through its runner). Adapters implement them; unit tests fake them."""

from __future__ import annotations

from typing import Protocol

from corral_contracts.ssh import SshLoginReply, SshLoginRequest, SshSessionEnded, SshWakeReply, SshWakeRequest


class AccessDesk(Protocol):
    async def login(self, request: SshLoginRequest) -> SshLoginReply: ...
    async def wake(self, request: SshWakeRequest) -> SshWakeReply: ...
    async def session_ended(self, ended: SshSessionEnded) -> None: ...
    async def check(self, access_ids: list[str]) -> dict[str, str]:
        """access id -> why it may no longer be used (`revoked`, `sandbox-gone`)."""


class Unreachable(Exception):
    """The sandbox (its runner or agent) cannot do what was asked; `message` is for the SSH client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Process(Protocol):
    """A process in the sandbox with its stdin, stdout and stderr."""

    async def write_stdin(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def signal(self, name: str) -> None: ...
    async def read(self) -> tuple[str, bytes] | None:
        """("stdout" | "stderr", bytes), then ("exit", JSON {"exitCode", "signal"}); None if the link broke."""
    async def close(self) -> None:
        """Before the exit: the process group is killed."""


class Terminal(Protocol):
    """A PTY in the sandbox running a shell or one command."""

    async def write(self, data: bytes) -> None: ...
    async def read(self) -> bytes | int | None:
        """Output bytes, then the exit status (int); None if the link broke."""
    async def resize(self, cols: int, rows: int) -> None: ...
    async def close(self) -> None:
        """Kills the PTY's processes if they still run."""


class Tunnel(Protocol):
    """A TCP connection to a port on the sandbox's loopback."""

    async def write(self, data: bytes) -> None: ...
    async def read(self) -> bytes:
        """b"" once the sandbox side has closed."""
    async def close(self) -> None: ...


class SandboxLink(Protocol):
    async def process(self, runner_id: str, sandbox_id: str, request: dict[str, object]) -> Process:
        """Raises `Unreachable`."""
    async def terminal(self, runner_id: str, sandbox_id: str, *, term: str, cols: int, rows: int,
                       command: str | None) -> Terminal:
        """Raises `Unreachable`."""
    async def tunnel(self, runner_id: str, sandbox_id: str, port: int) -> Tunnel:
        """Raises `Unreachable` (with a message saying nothing listens, when that is why)."""
    async def close(self) -> None: ...
