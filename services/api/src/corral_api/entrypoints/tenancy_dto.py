"""Wire shapes of organizations, API keys, quotas and the audit log (camelCase, as Daytona's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ..app.identity import ApiKeyEntry, OrganizationEntry
from ..domain.identity import NAME, PERMISSIONS, masked
from ..domain.quotas import Quota, Usage
from .dto import iso


Name = Annotated[str, msgspec.Meta(pattern=NAME.pattern, min_length=1, max_length=63)]
Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]


class CreateApiKeyBody(msgspec.Struct, rename="camel", kw_only=True):
    name: Name
    permissions: list[Permission] = []
    expires_at: datetime | None = None


class ApiKeyCreatedDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    """The only answer that carries a key's value."""

    name: str
    value: str
    created_at: str
    permissions: list[str]
    expires_at: str | None


class ApiKeyDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    name: str
    value: str
    """Masked: the prefix and the last four characters."""
    created_at: str
    permissions: list[str]
    last_used_at: str | None
    expires_at: str | None
    organization_id: str


class CreateOrganizationBody(msgspec.Struct, kw_only=True):
    name: Name


class QuotaDto(msgspec.Struct, rename="camel", kw_only=True):
    max_cpu_per_sandbox: int
    max_memory_per_sandbox: int
    max_disk_per_sandbox: int
    total_cpu_quota: int
    total_memory_quota: int
    total_disk_quota: int
    rate_limit_authenticated: int
    rate_limit_sandbox_create: int
    rate_limit_sandbox_lifecycle: int


class QuotaBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`PATCH`: a field left out is unchanged; `null` returns it to the platform default."""

    max_cpu_per_sandbox: int | None | UnsetType = UNSET
    max_memory_per_sandbox: int | None | UnsetType = UNSET
    max_disk_per_sandbox: int | None | UnsetType = UNSET
    total_cpu_quota: int | None | UnsetType = UNSET
    total_memory_quota: int | None | UnsetType = UNSET
    total_disk_quota: int | None | UnsetType = UNSET
    rate_limit_authenticated: int | None | UnsetType = UNSET
    rate_limit_sandbox_create: int | None | UnsetType = UNSET
    rate_limit_sandbox_lifecycle: int | None | UnsetType = UNSET

    def changes(self) -> dict[str, int | None]:
        """In the contract's names (`OrganizationQuota`)."""
        return {QUOTA_FIELDS[f]: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not UNSET}


QUOTA_FIELDS = {
    "max_cpu_per_sandbox": "max_cpu_per_sandbox", "max_memory_per_sandbox": "max_memory_per_sandbox",
    "max_disk_per_sandbox": "max_disk_per_sandbox", "total_cpu_quota": "total_cpu", "total_memory_quota": "total_memory",
    "total_disk_quota": "total_disk", "rate_limit_authenticated": "rate_authenticated",
    "rate_limit_sandbox_create": "rate_sandbox_create", "rate_limit_sandbox_lifecycle": "rate_sandbox_lifecycle",
}
"""Wire name (snake) -> the contract's and `Quota`'s name."""


class UsageDto(msgspec.Struct, kw_only=True):
    cpu: int
    memory: int
    disk: int


class SuspendBody(msgspec.Struct, kw_only=True):
    reason: str = ""


class OrganizationDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    id: str
    name: str
    created_at: str
    suspended: bool
    suspension_reason: str | None
    quota: QuotaDto
    usage: UsageDto


class OrganizationCreatedDto(OrganizationDto, kw_only=True):
    api_key: ApiKeyCreatedDto
    """The organization's first key (every permission), shown this once."""


class AuditLogDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    id: str
    organization_id: str
    actor_id: str
    actor_name: str
    actor_api_key_prefix: str
    actor_api_key_suffix: str
    action: str
    target_type: str
    target_id: str
    status_code: int
    error_message: str | None
    ip_address: str
    user_agent: str
    source: str
    sdk_version: str
    method: str
    path: str
    duration_ms: float
    metadata: dict[str, Any]
    created_at: str


class AuditPageDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    items: list[AuditLogDto]
    total: int
    page: int
    total_pages: int
    next_token: str | None


def _ordered(permissions: frozenset[str]) -> list[str]:
    return [p for p in PERMISSIONS if p in permissions]


def _when(at: datetime | None) -> str | None:
    return iso(at) if at is not None else None


def key_created_dto(value: str, entry: ApiKeyEntry) -> ApiKeyCreatedDto:
    return ApiKeyCreatedDto(name=entry.name, value=value, created_at=iso(entry.created_at),
                            permissions=_ordered(entry.permissions), expires_at=_when(entry.expires_at))


def key_dto(entry: ApiKeyEntry) -> ApiKeyDto:
    return ApiKeyDto(name=entry.name, value=masked(entry.prefix, entry.suffix), created_at=iso(entry.created_at),
                     permissions=_ordered(entry.permissions), last_used_at=_when(entry.last_used_at),
                     expires_at=_when(entry.expires_at), organization_id=entry.organization_id)


def quota_dto(quota: Quota) -> QuotaDto:
    return QuotaDto(**{wire: getattr(quota, name) for wire, name in QUOTA_FIELDS.items()})


def organization_dto(org: OrganizationEntry, quota: Quota, usage: Usage) -> OrganizationDto:
    return OrganizationDto(id=org.id, name=org.name, created_at=iso(org.created_at), suspended=org.suspended,
                           suspension_reason=org.suspension_reason or None, quota=quota_dto(quota),
                           usage=UsageDto(cpu=usage.cpu, memory=usage.memory, disk=usage.disk))
