"""Quotas: what a sandbox holds in each state, and whether an organization may take more. Pure.

Following Daytona (§10): CPU and memory count while a sandbox runs or is on its way to running;
disk counts in those states and while stopped (its filesystem still exists). `archived`, `error`,
`destroying` and `destroyed` hold nothing (quota is freed as soon as deletion is asked).
"""

from __future__ import annotations

import msgspec

from corral_contracts.identity import OrganizationQuota

from .errors import InvalidRequest, QuotaExceeded

CPU_STATES = frozenset(
    "creating restoring started starting stopping pending_build building_snapshot unknown pulling_snapshot "
    "forking pausing resuming".split())
DISK_STATES = CPU_STATES | frozenset({"stopped", "paused", "archiving", "resizing", "snapshotting"})


class Usage(msgspec.Struct, frozen=True):
    cpu: int = 0
    memory: int = 0
    disk: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.cpu + other.cpu, self.memory + other.memory, self.disk + other.disk)

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(self.cpu - other.cpu, self.memory - other.memory, self.disk - other.disk)

    def rises(self) -> bool:
        return self.cpu > 0 or self.memory > 0 or self.disk > 0


class Quota(msgspec.Struct, frozen=True, kw_only=True):
    """Every limit resolved (an organization's overrides over the platform defaults)."""

    max_cpu_per_sandbox: int = 4
    max_memory_per_sandbox: int = 8
    max_disk_per_sandbox: int = 10
    total_cpu: int = 400
    total_memory: int = 800
    total_disk: int = 4000
    rate_authenticated: int = 100_000
    rate_sandbox_create: int = 10_000
    rate_sandbox_lifecycle: int = 100_000

    def over(self, overrides: OrganizationQuota | None) -> "Quota":
        if overrides is None:
            return self
        changes = {f: getattr(overrides, f) for f in overrides.__struct_fields__ if getattr(overrides, f) is not None}
        return msgspec.structs.replace(self, **changes)


LIMIT_MAX = 1_000_000_000
"""No limit is larger (keeps every figure a plain 64-bit integer)."""


def check_overrides(overrides: OrganizationQuota) -> OrganizationQuota:
    for name in overrides.__struct_fields__:
        value = getattr(overrides, name)
        if value is not None and not 0 <= value <= LIMIT_MAX:
            raise InvalidRequest(f"{name} must be between 0 and {LIMIT_MAX}, got {value}")
    return overrides


def held(state: str, cpu: int, memory: int, disk: int, resume_state: str | None = None) -> Usage:
    """What a sandbox in `state` holds. A resizing sandbox holds what the state it resumes holds."""
    if state == "resizing" and resume_state:
        state = resume_state
    runs = state in CPU_STATES
    return Usage(cpu if runs else 0, memory if runs else 0, disk if state in DISK_STATES else 0)


def check_sandbox_size(quota: Quota, cpu: int, memory: int, disk: int | None) -> None:
    """`disk` None: not asked for (a resize of CPU and memory)."""
    for label, value, top in (("cpu", cpu, quota.max_cpu_per_sandbox), ("memory", memory, quota.max_memory_per_sandbox),
                              ("disk", disk, quota.max_disk_per_sandbox)):
        if value is None:
            continue
        if value < 1:
            raise InvalidRequest(f"{label} must be at least 1, got {value}")
        if value > top:
            raise QuotaExceeded(f"{label} {value} exceeds the maximum per sandbox ({top})")


def check_admission(quota: Quota, usage: Usage, rise: Usage) -> None:
    """May an organization using `usage` take `rise` more? Only the parts that rise are checked, so a
    request that frees one resource is never refused for another already over its (lowered) total."""
    for label, now, more, total, unit in (("CPU", usage.cpu, rise.cpu, quota.total_cpu, ""),
                                          ("memory", usage.memory, rise.memory, quota.total_memory, " GiB"),
                                          ("disk", usage.disk, rise.disk, quota.total_disk, " GiB")):
        if more > 0 and now + more > total:
            raise QuotaExceeded(f"Total {label} quota exceeded: {now}{unit} in use, {more}{unit} more asked, "
                                f"{total}{unit} allowed")
