"""Events of organizations and API keys. Keys are only ever carried as SHA-256 hashes.

Aggregates: `organization` (one per organization), `organization_name` and `api_key_name` (tiny
name slots, so a name is claimed atomically with what takes it), `api_key` (one per key, its id
derived from the key's hash) and `organization_usage` (one ledger per organization: every admission
that raises the organization's resource usage is appended to it, in the same transaction as the
sandbox events, so concurrent admissions serialize on its version).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Union

import msgspec


class OrganizationQuota(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An organization's limits; None = the platform default (the api's settings)."""

    max_cpu_per_sandbox: int | None = None
    max_memory_per_sandbox: int | None = None
    max_disk_per_sandbox: int | None = None
    total_cpu: int | None = None
    total_memory: int | None = None
    total_disk: int | None = None
    rate_authenticated: int | None = None
    """Requests per minute (any authenticated call)."""
    rate_sandbox_create: int | None = None
    rate_sandbox_lifecycle: int | None = None


class OrganizationCreated(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "organization"
    organization_id: str
    name: str
    created_by: str = ""
    """The key id of the operator who created it ("" for the platform's own default organization)."""


class OrganizationQuotaChanged(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The organization's whole quota from now on (not a delta)."""

    __aggregate__: ClassVar[str] = "organization"
    organization_id: str
    quota: OrganizationQuota


class OrganizationSuspended(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Its keys may still read; every write and every toolbox call is refused until unsuspended."""

    __aggregate__: ClassVar[str] = "organization"
    organization_id: str
    reason: str = ""


class OrganizationUnsuspended(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "organization"
    organization_id: str


class OrganizationNameClaimed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "organization_name"
    name: str
    organization_id: str


class OrganizationUsageAdmitted(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A request that raises the organization's usage was admitted under its quota: the sandbox holds
    (at most) this much from now on. Recorded in the same transaction as the sandbox's own events."""

    __aggregate__: ClassVar[str] = "organization_usage"
    organization_id: str
    sandbox_id: str
    operation: str
    """`create`, `start`, `restore`, `recover`, `resize`."""
    cpu: int
    memory: int
    disk: int


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
    expires_at: datetime | None = None
    operator: bool = False
    """A platform operator's key: may manage organizations (the bootstrap admin key)."""
    created_by: str = ""
    """The key id of the key that created this one ("" for the bootstrap key and organizations' first keys)."""


class ApiKeyRevoked(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "api_key"
    key_id: str
    organization_id: str


class ApiKeyUsed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """The key was used (recorded coarsely: at most once per key per few minutes, never per request)."""

    __aggregate__: ClassVar[str] = "api_key"
    key_id: str
    organization_id: str


class ApiKeyNameClaimed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "api_key_name"
    organization_id: str
    name: str
    key_id: str


class ApiKeyNameReleased(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "api_key_name"
    organization_id: str
    name: str
    key_id: str


IdentityEvent = Union[
    OrganizationCreated,
    OrganizationQuotaChanged,
    OrganizationSuspended,
    OrganizationUnsuspended,
    OrganizationNameClaimed,
    OrganizationUsageAdmitted,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyUsed,
    ApiKeyNameClaimed,
    ApiKeyNameReleased,
]
