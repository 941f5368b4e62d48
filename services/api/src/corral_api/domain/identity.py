"""Organizations and API keys: pure rules. Only the SHA-256 of a key is ever recorded; a key's id is
derived from its hash, and names are claimed through small name-slot aggregates."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone
from uuid import NAMESPACE_URL, UUID, uuid5

from corral_contracts.identity import ApiKeyCreated

from .errors import Forbidden, InvalidRequest

DEFAULT_ORGANIZATION_ID = "00000000-0000-4000-8000-000000000001"
DEFAULT_ORGANIZATION_NAME = "default"
"""The platform's own organization: the bootstrap admin (operator) key belongs to it."""

PERMISSIONS = (
    "write:registries", "delete:registries", "write:snapshots", "delete:snapshots", "write:sandboxes",
    "delete:sandboxes", "read:volumes", "write:volumes", "delete:volumes", "write:regions", "delete:regions",
    "read:runners", "write:runners", "delete:runners", "read:audit_logs", "write:webhooks",
)
"""Daytona's API-key permission scopes, in its order, then Corral's own: `write:webhooks` (manage webhook
endpoints, see their signing secrets, send tests and replays; Daytona manages webhooks in its portal)."""
ALL_PERMISSIONS = list(PERMISSIONS)

PUBLIC = "public"
"""Route classification: no key needed."""
AUTHENTICATED = "authenticated"
"""Route classification: any valid key of any organization (reads; each answer scoped to the caller)."""
OPERATOR = "operator"
WRITE_SANDBOXES = "write:sandboxes"
"""The scope of every change to a sandbox (the routes of several modules need it)."""
"""Route classification: only a platform operator's key."""
CLASSIFICATIONS = frozenset({PUBLIC, AUTHENTICATED, OPERATOR, *PERMISSIONS})

KEY_PREFIX = "crl_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")
RESERVED_KEY_NAMES = frozenset({"current"})
"""`GET /api/api-keys/current` is the caller's own key, so no key may be called that."""


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def hash_key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def key_id_for(key_hash: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"corral:api-key:{key_hash}")


def key_name_key(organization_id: str, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"corral:api-key-name:{organization_id}:{name}")


def organization_name_key(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"corral:organization-name:{name.lower()}")


def usage_ledger_key(organization_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"corral:organization-usage:{organization_id}")


def masked(prefix: str, suffix: str) -> str:
    """How a key is shown after creation: never whole."""
    return f"{prefix}...{suffix}"


def key_created(value: str, *, organization_id: str, name: str, permissions: list[str],
                expires_at: datetime | None = None, operator: bool = False, created_by: str = "") -> ApiKeyCreated:
    key_hash = hash_key(value)
    return ApiKeyCreated(key_id=str(key_id_for(key_hash)), organization_id=organization_id, name=name,
                         key_hash=key_hash, prefix=value[:8], suffix=value[-4:], permissions=permissions,
                         expires_at=expires_at, operator=operator, created_by=created_by)


def admin_key_created(value: str, organization_id: str = DEFAULT_ORGANIZATION_ID) -> ApiKeyCreated:
    return key_created(value, organization_id=organization_id, name="admin", permissions=ALL_PERMISSIONS, operator=True)


def check_name(kind: str, name: str) -> str:
    if not NAME.match(name):
        raise InvalidRequest(f"{kind} name must be 1-63 letters, digits, spaces, '.', '_' or '-', "
                             "starting with a letter or digit")
    return name


def check_permissions(requested: list[str], held: frozenset[str] | None) -> list[str]:
    """Known scopes only, each at most once, in Daytona's order; `held` None = an operator (holds all).
    A key cannot grant what it does not hold."""
    unknown = sorted(set(requested) - set(PERMISSIONS))
    if unknown:
        raise InvalidRequest(f"unknown permission(s) {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}")
    if held is not None:
        lacking = sorted(set(requested) - held)
        if lacking:
            raise Forbidden(f"a key cannot grant permissions it does not hold: {', '.join(lacking)}")
    return [p for p in PERMISSIONS if p in requested]


def check_expiry(expires_at: datetime | None, caller_expires_at: datetime | None, now: datetime) -> datetime | None:
    """A new key must expire in the future, and never after the key that creates it."""
    if expires_at is None:
        if caller_expires_at is not None:
            return caller_expires_at
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    if expires_at <= now:
        raise InvalidRequest("expiresAt must be in the future")
    if caller_expires_at is not None and expires_at > caller_expires_at:
        raise Forbidden("a key cannot outlive the key that creates it")
    return expires_at
