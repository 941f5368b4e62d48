"""SSH access tokens and SSH sessions: state folded from their events, and pure decisions.

A token is its own stream: created (only its SHA-256 is kept), used at every login, revoked or expired.
Issuing a token does not revoke the sandbox's earlier ones (Daytona does): two people or tools can each
hold their own and revoke it alone; `DELETE …/ssh-access` without a token revokes them all, and a sandbox
keeps at most `MAX_LIVE_TOKENS` live tokens (issuing one more revokes the oldest).

A session (one SSH connection) is its own stream too: started at login, ended at logout; both are
idempotent, so the gateway may repeat a report.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import datetime, timedelta
from typing import Any

import msgspec

from corral_contracts import ssh as ev

from .errors import InvalidRequest, InvalidState

TOKEN_ALPHABET = string.ascii_letters + string.digits
"""Daytona's tokens: 32 random characters without `-` or `_`."""
TOKEN_LENGTH = 32
DEFAULT_MINUTES = 60
MAX_MINUTES = 7 * 24 * 60
"""A token lives at most a week; ask for a new one after that."""
MAX_LIVE_TOKENS = 20
"""Live tokens per sandbox; issuing one more revokes the oldest (reason `superseded`)."""
MAX_CHANNELS = 100
MAX_COMMAND_CHARS = 1000


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Refusal(msgspec.Struct, frozen=True):
    code: str
    """`unknown`, `expired`, `revoked`, `sandbox-gone`, `sandbox-error`."""
    message: str


UNKNOWN = Refusal("unknown", "This SSH access token is not valid. Ask for one with "
                  "POST /api/sandbox/{id}/ssh-access (or sandbox.create_ssh_access()).")


class SshAccess(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    sandbox_id: str
    organization_id: str
    token_hash: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    revoked: str = ""
    """Why it was revoked ("" while it is not)."""
    expired: bool = False
    """Whether its expiry is recorded (`SshAccessExpired`)."""
    uses: int = 0
    last_used_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return not self.revoked and not self.expired and now < self.expires_at


def evolve(access: SshAccess | None, event: Any, version: int, at: datetime) -> SshAccess | None:
    if isinstance(event, ev.SshAccessCreated):
        return SshAccess(id=event.access_id, version=version, sandbox_id=event.sandbox_id,
                         organization_id=event.organization_id, token_hash=event.token_hash,
                         expires_at=event.expires_at, created_at=at, updated_at=at)
    if access is None:
        return None
    change: dict[str, Any] = {"version": version, "updated_at": at}
    match event:
        case ev.SshAccessUsed():
            change |= {"uses": access.uses + 1, "last_used_at": at}
        case ev.SshAccessRevoked(reason=reason):
            change |= {"revoked": reason or "user"}
        case ev.SshAccessExpired():
            change |= {"expired": True}
        case _:
            return access
    return msgspec.structs.replace(access, **change)


def expiry(now: datetime, minutes: int | None, minute: float = 60.0) -> datetime:
    """`minute`: seconds in a minute (60; shorter only in tests, as the lifecycle timers' minute)."""
    minutes = DEFAULT_MINUTES if minutes is None else minutes
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidRequest(f"expiresInMinutes must be between 1 and {MAX_MINUTES}, got {minutes}")
    return now + timedelta(seconds=minutes * minute)


def issue(*, access_id: str, sandbox_id: str, organization_id: str, sandbox_state: str, token: str,
          expires_at: datetime) -> list[Any]:
    if sandbox_state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox_id} is {sandbox_state}")
    return [ev.SshAccessCreated(sandbox_id=sandbox_id, access_id=access_id, organization_id=organization_id,
                                token_hash=token_hash(token), expires_at=expires_at)]


def revoke(access: SshAccess, reason: str = "user") -> list[Any]:
    """Idempotent: an access already revoked or expired records nothing."""
    if access.revoked or access.expired:
        return []
    return [ev.SshAccessRevoked(sandbox_id=access.sandbox_id, access_id=access.id, reason=reason)]


def expire(access: SshAccess, now: datetime) -> list[Any]:
    """Record the expiry of a token past its time (once)."""
    if access.revoked or access.expired or now < access.expires_at:
        return []
    return [ev.SshAccessExpired(sandbox_id=access.sandbox_id, access_id=access.id, expires_at=access.expires_at)]


def refusal(access: SshAccess | None, now: datetime) -> Refusal | None:
    """Why this token may not log in now, or None if it may."""
    if access is None:
        return UNKNOWN
    if access.revoked:
        return Refusal("revoked", "This SSH access token was revoked.")
    if access.expired or now >= access.expires_at:
        return Refusal("expired", f"This SSH access token expired at {access.expires_at.isoformat()}.")
    return None


def sandbox_refusal(sandbox_id: str, state: str | None, error_reason: str | None = None) -> Refusal | None:
    """Whether an SSH login can reach a sandbox in this state (a stopped or archived one is started)."""
    if state is None or state in ("destroying", "destroyed"):
        return Refusal("sandbox-gone", f"Sandbox {sandbox_id} has been destroyed.")
    if state in ("error", "build_failed"):
        return Refusal("sandbox-error", f"Sandbox {sandbox_id} is in error ({error_reason or 'no reason given'}); "
                                        "recover it first (POST /api/sandbox/{id}/recover).")
    return None


def use(access: SshAccess, *, session_id: str, client_address: str, client_version: str) -> list[Any]:
    return [ev.SshAccessUsed(sandbox_id=access.sandbox_id, access_id=access.id, session_id=session_id,
                             client_address=client_address, client_version=client_version[:200])]


def superseded(accesses: list[SshAccess], now: datetime, limit: int = MAX_LIVE_TOKENS) -> list[SshAccess]:
    """The oldest live tokens beyond `limit - 1`: revoked so that one more fits."""
    live = sorted((a for a in accesses if a.live(now)), key=lambda a: (a.created_at, a.id))
    return live[: max(0, len(live) - (limit - 1))]


# --- sessions -----------------------------------------------------------------------------------


class SshSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    sandbox_id: str
    access_id: str
    started_at: datetime
    ended: bool = False


def evolve_session(session: SshSession | None, event: Any, version: int, at: datetime) -> SshSession | None:
    if isinstance(event, ev.SshSessionStarted):
        return SshSession(id=event.session_id, version=version, sandbox_id=event.sandbox_id,
                          access_id=event.access_id, started_at=at)
    if session is None:
        return None
    if isinstance(event, ev.SshSessionEnded):
        return msgspec.structs.replace(session, version=version, ended=True)
    return session


def end(session: SshSession, ended: ev.SshSessionEnded) -> list[Any]:
    """Idempotent: a session ends once. The report is checked against the session it names."""
    if session.ended:
        return []
    if ended.sandbox_id != session.sandbox_id or ended.access_id != session.access_id:
        raise InvalidRequest(f"SSH session {session.id} belongs to another sandbox or token")
    channels = [msgspec.structs.replace(c, command=c.command[:MAX_COMMAND_CHARS]) for c in ended.channels]
    return [msgspec.structs.replace(ended, channels=channels[:MAX_CHANNELS],
                                    more_channels=ended.more_channels + max(0, len(channels) - MAX_CHANNELS))]
