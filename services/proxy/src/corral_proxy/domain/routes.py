"""The proxy's routing table, folded from events: which sandbox lives where, whose it is, which API
keys may reach it, and who may see its previews (public flag, preview token, signed preview URLs).
Pure: the same events always give the same table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from corral_contracts import identity as idev
from corral_contracts import preview as pv
from corral_contracts import sandbox as ev


class Route(msgspec.Struct, kw_only=True):
    sandbox_id: str
    organization_id: str
    runner_id: str
    state: str
    signing_key: str = ""
    """The key signed file URLs are checked against (`SandboxSigningKeyRotated`)."""
    public: bool = False
    """Previews open to anyone (`SandboxPublicChanged`)."""
    preview_token: str = ""
    """The token that opens the sandbox's private previews."""


class Grant(msgspec.Struct, kw_only=True):
    """A signed preview URL: one port of one sandbox, until `expires_at` (or revoked)."""

    sandbox_id: str
    port: int
    expires_at: datetime
    revoked: bool = False


STATE_AFTER = {
    ev.SandboxStarted: "started", ev.SandboxStartRequested: "starting", ev.SandboxStopRequested: "stopping",
    ev.SandboxStopped: "stopped", ev.SandboxDestroyRequested: "destroying", ev.SandboxDestroyed: "destroyed",
    ev.SandboxFailed: "error",
    ev.SandboxArchiveRequested: "archiving", ev.SandboxArchived: "archived",
    ev.SandboxRestoreRequested: "restoring", ev.SandboxRecoverRequested: "starting",
}


class RouteTable:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.keys: dict[str, str] = {}
        """SHA-256 of an API key -> its organization."""
        self.expiry: dict[str, datetime] = {}
        """SHA-256 of an API key -> when it stops working (keys that expire)."""
        self.suspended: set[str] = set()
        """Organizations whose toolbox traffic is refused."""
        self._key_hashes: dict[str, str] = {}
        self.grants: dict[str, Grant] = {}
        """SHA-256 of a signed preview URL's token -> what it opens."""

    def apply(self, payload: Any) -> None:
        match payload:
            case ev.SandboxCreated():
                self.routes[payload.sandbox_id] = Route(sandbox_id=payload.sandbox_id,
                                                        organization_id=payload.organization_id,
                                                        runner_id=payload.runner_id, state="creating",
                                                        public=payload.public, preview_token=payload.preview_token)
            case ev.SandboxPublicChanged():
                route = self.routes.get(payload.sandbox_id)
                if route is not None:
                    route.public = payload.public
            case pv.SignedPreviewUrlIssued():
                self.grants[payload.token_hash] = Grant(sandbox_id=payload.sandbox_id, port=payload.port,
                                                        expires_at=payload.expires_at)
            case pv.SignedPreviewUrlExpired():
                grant = self.grants.get(payload.token_hash)
                if grant is not None:
                    grant.revoked = True
            case ev.SandboxSigningKeyRotated():
                route = self.routes.get(payload.sandbox_id)
                if route is not None:
                    route.signing_key = payload.signing_key
            case idev.ApiKeyCreated():
                self.keys[payload.key_hash] = payload.organization_id
                self._key_hashes[payload.key_id] = payload.key_hash
                if payload.expires_at is not None:
                    self.expiry[payload.key_hash] = payload.expires_at
            case idev.ApiKeyRevoked():
                key_hash = self._key_hashes.get(payload.key_id, "")
                self.keys.pop(key_hash, None)
                self.expiry.pop(key_hash, None)
            case idev.OrganizationSuspended():
                self.suspended.add(payload.organization_id)
            case idev.OrganizationUnsuspended():
                self.suspended.discard(payload.organization_id)
            case _:
                state = STATE_AFTER.get(type(payload))
                route = self.routes.get(getattr(payload, "sandbox_id", ""))
                if state and route:
                    if state == "destroyed":
                        del self.routes[route.sandbox_id]
                    else:
                        route.state = state

    def prune_grants(self, now: datetime) -> int:
        """Forget signed preview URLs whose time is up (they can never open anything again)."""
        ended = [token_hash for token_hash, grant in self.grants.items() if grant.expires_at <= now]
        for token_hash in ended:
            del self.grants[token_hash]
        return len(ended)
