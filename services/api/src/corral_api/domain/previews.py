"""Preview URLs, pure: their shapes, the rules of signed preview URLs and their small aggregate.

A signed preview URL opens one port of one sandbox until it expires (1 s – 24 h, default 60 s) or is
revoked. Its token is 16 lowercase letters and digits; only its SHA-256 is recorded, and the
aggregate's id is derived from that hash, so the token alone finds it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec

from corral_contracts import preview as pv

from .errors import InvalidRequest, InvalidState, NotFound
from .sandbox import Sandbox

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TOKEN_LENGTH = 16
DEFAULT_SECONDS = 60
MIN_SECONDS, MAX_SECONDS = 1, 24 * 3600
_NAMESPACE = uuid.UUID("5f0c2b8e-4d0a-4b8e-9a51-7c1f6e3d2a90")


def port_of(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise InvalidRequest(f"port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def lifetime_of(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_SECONDS
    if not (text.isascii() and text.isdigit()) or not MIN_SECONDS <= int(text) <= MAX_SECONDS:
        raise InvalidRequest(f"expiresInSeconds must be a whole number from {MIN_SECONDS} to {MAX_SECONDS}, got {text!r}")
    return int(text)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def grant_id(token: str) -> uuid.UUID:
    """The aggregate id of a signed preview URL: from its token, so the token alone finds it."""
    return uuid.uuid5(_NAMESPACE, token_hash(token))


def is_token(text: str) -> bool:
    return len(text) == TOKEN_LENGTH and all(c in TOKEN_ALPHABET for c in text)


class SignedPreviewUrl(msgspec.Struct, frozen=True, kw_only=True):
    sandbox_id: str
    organization_id: str
    port: int
    token_hash: str
    expires_at: datetime
    revoked: bool = False
    version: int = 0


def evolve(state: SignedPreviewUrl | None, event: Any, version: int) -> SignedPreviewUrl | None:
    match event:
        case pv.SignedPreviewUrlIssued():
            return SignedPreviewUrl(sandbox_id=event.sandbox_id, organization_id=event.organization_id,
                                    port=event.port, token_hash=event.token_hash, expires_at=event.expires_at,
                                    version=version)
        case pv.SignedPreviewUrlExpired() if state is not None:
            return msgspec.structs.replace(state, revoked=True, version=version)
    return state


def issue(sandbox: Sandbox, port: int, token: str, seconds: int, now: datetime) -> list[Any]:
    if sandbox.state in ("destroying", "destroyed"):
        raise InvalidState(f"Sandbox {sandbox.id} is {sandbox.state}")
    return [pv.SignedPreviewUrlIssued(sandbox_id=sandbox.id, organization_id=sandbox.organization_id, port=port,
                                      token_hash=token_hash(token), expires_at=now + timedelta(seconds=seconds))]


def expire(grant: SignedPreviewUrl | None, sandbox: Sandbox, port: int) -> list[Any]:
    """Revoke now. Idempotent: an already revoked or expired URL records nothing more."""
    if grant is None or grant.sandbox_id != sandbox.id or grant.port != port:
        raise NotFound(f"Signed preview URL not found for port {port} of sandbox {sandbox.id}")
    if grant.revoked:
        return []
    return [pv.SignedPreviewUrlExpired(sandbox_id=sandbox.id, port=port, token_hash=grant.token_hash)]


def host_url(base: str, port: int, label: str) -> str:
    """`{scheme}://{port}-{label}.{host}[:{port}]` under the preview base (e.g. `http://preview.localhost:4000`)."""
    parts = urlsplit(base)
    return f"{parts.scheme or 'http'}://{port}-{label}.{parts.netloc}"


def path_url(proxy_base: str, port: int, label: str) -> str:
    """`{proxy}/preview/{label}/{port}/`: for places without wildcard DNS."""
    return f"{proxy_base.rstrip('/')}/preview/{label}/{port}/"
