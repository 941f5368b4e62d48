"""Events of organizations and API keys. Keys are only ever carried as SHA-256 hashes."""

from __future__ import annotations

from typing import ClassVar, Union

import msgspec


class ApiKeyCreated(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "api_key"
    key_id: str
    organization_id: str
    name: str
    key_hash: str
    """Hex SHA-256 of the key value; the value itself is never recorded."""
    prefix: str
    suffix: str
    permissions: list[str] = []


class ApiKeyRevoked(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "api_key"
    key_id: str
    organization_id: str


IdentityEvent = Union[ApiKeyCreated, ApiKeyRevoked]
