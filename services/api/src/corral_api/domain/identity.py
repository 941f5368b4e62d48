"""API keys: only the SHA-256 of a key is ever recorded; the key id is derived from the hash."""

from __future__ import annotations

import hashlib
import secrets
from uuid import NAMESPACE_URL, UUID, uuid5

from corral_contracts.identity import ApiKeyCreated

DEFAULT_ORGANIZATION_ID = "00000000-0000-4000-8000-000000000001"
ALL_PERMISSIONS = [
    "write:sandboxes", "delete:sandboxes", "write:snapshots", "delete:snapshots", "read:volumes",
    "write:volumes", "delete:volumes", "read:audit_logs",
]


def new_api_key() -> str:
    return "crl_" + secrets.token_hex(32)


def hash_key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def key_id_for(key_hash: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"corral:api-key:{key_hash}")


def admin_key_created(value: str, organization_id: str = DEFAULT_ORGANIZATION_ID) -> ApiKeyCreated:
    key_hash = hash_key(value)
    return ApiKeyCreated(key_id=str(key_id_for(key_hash)), organization_id=organization_id, name="admin",
                         key_hash=key_hash, prefix=value[:8], suffix=value[-4:], permissions=ALL_PERMISSIONS)
