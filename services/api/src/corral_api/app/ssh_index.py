"""The SSH access read model: which token hash is which access, and which streams belong to a sandbox.

Folded from the event log by the sandbox directory (it calls `apply` for every event), so it is rebuilt
from zero with it. Decisions never trust it alone: they load the token's own stream.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from corral_contracts import ssh as ev
from corral_eventstore import Recorded


class AccessEntry:
    __slots__ = ("access_id", "sandbox_id", "organization_id", "expires_at", "created_at", "ended")

    def __init__(self, access_id: str, sandbox_id: str, organization_id: str, expires_at: datetime,
                 created_at: datetime):
        self.access_id = access_id
        self.sandbox_id = sandbox_id
        self.organization_id = organization_id
        self.expires_at = expires_at
        self.created_at = created_at
        self.ended = ""
        """`revoked` or `expired` once recorded ("" while live)."""


class SshIndex:
    def __init__(self) -> None:
        self.by_hash: dict[str, str] = {}
        """Token SHA-256 -> access id."""
        self.accesses: dict[str, AccessEntry] = {}
        self.of_sandbox: dict[str, list[str]] = defaultdict(list)
        """Sandbox id -> its access ids, oldest first."""
        self.sessions_of_sandbox: dict[str, list[str]] = defaultdict(list)
        """Sandbox id -> its SSH session ids, oldest first."""
        self.open_sessions: dict[str, str] = {}
        """Session id -> sandbox id, for sessions not ended yet."""

    def apply(self, event: Recorded) -> None:
        payload = event.payload
        match payload:
            case ev.SshAccessCreated():
                self.by_hash[payload.token_hash] = payload.access_id
                self.accesses[payload.access_id] = AccessEntry(payload.access_id, payload.sandbox_id,
                                                               payload.organization_id, payload.expires_at,
                                                               event.timestamp)
                self.of_sandbox[payload.sandbox_id].append(payload.access_id)
            case ev.SshAccessRevoked() | ev.SshAccessExpired():
                entry = self.accesses.get(payload.access_id)
                if entry is not None and not entry.ended:
                    entry.ended = "revoked" if isinstance(payload, ev.SshAccessRevoked) else "expired"
            case ev.SshSessionStarted():
                self.sessions_of_sandbox[payload.sandbox_id].append(payload.session_id)
                self.open_sessions[payload.session_id] = payload.sandbox_id
            case ev.SshSessionEnded():
                self.open_sessions.pop(payload.session_id, None)

    def live(self, now: datetime) -> list[AccessEntry]:
        return [e for e in self.accesses.values() if not e.ended and e.expires_at > now]

    def due(self, now: datetime) -> list[AccessEntry]:
        """Tokens past their expiry whose expiry is not recorded yet."""
        return [e for e in self.accesses.values() if not e.ended and e.expires_at <= now]

    def streams_of(self, sandbox_id: str) -> list[UUID]:
        """Every SSH stream of a sandbox (its tokens, then its sessions): for its timeline."""
        return [UUID(i) for i in (*self.of_sandbox.get(sandbox_id, ()), *self.sessions_of_sandbox.get(sandbox_id, ()))]
