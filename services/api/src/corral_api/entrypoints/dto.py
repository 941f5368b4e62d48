"""The REST API's wire shapes (Daytona's JSON, camelCase), defined once for decoding, encoding and
the OpenAPI document."""

from __future__ import annotations

from typing import Any

import msgspec

from corral_contracts.volume import VolumeMount

from ..app.sandboxes import CreateRequest
from ..domain.guard import parse_allow_list, show_allow_list
from ..domain.sandbox import Sandbox


class VolumeMountBody(msgspec.Struct, rename="camel", kw_only=True):
    volume_id: str
    mount_path: str
    subpath: str | None = None


class BuildInfoBody(msgspec.Struct, rename="camel", kw_only=True):
    dockerfile_content: str
    context_hashes: list[str] | None = None


class SandboxBuildInfoDto(msgspec.Struct, rename="camel", kw_only=True):
    snapshot_ref: str
    dockerfile_content: str
    context_hashes: list[str]
    created_at: str
    updated_at: str


class CreateSandboxBody(msgspec.Struct, rename="camel", kw_only=True):
    """`POST /api/sandbox`. Every field is optional; unknown fields (the SDK sends many) are ignored."""

    name: str | None = None
    snapshot: str | None = None
    user: str | None = None
    env: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    public: bool | None = None
    target: str | None = None
    cpu: int | None = None
    gpu: int | None = None
    memory: int | None = None
    disk: int | None = None
    auto_stop_interval: int | None = None
    auto_archive_interval: int | None = None
    auto_delete_interval: int | None = None
    network_block_all: bool | None = None
    network_allow_list: str | None = None
    """Comma-separated IPv4 CIDRs (at most 10): egress only to these."""
    volumes: list[VolumeMountBody] | None = None
    build_info: BuildInfoBody | None = None

    def to_request(self) -> CreateRequest:
        return CreateRequest(
            name=self.name, snapshot=self.snapshot, user=self.user, env=self.env or {}, labels=self.labels or {},
            public=bool(self.public), target=self.target, cpu=self.cpu, gpu=self.gpu, memory=self.memory,
            disk=self.disk, auto_stop_interval=self.auto_stop_interval,
            auto_archive_interval=self.auto_archive_interval, auto_delete_interval=self.auto_delete_interval,
            network_block_all=bool(self.network_block_all),
            network_allow_list=parse_allow_list(self.network_allow_list or ""),
            volumes=[VolumeMount(volume_id=v.volume_id, mount_path=v.mount_path, subpath=v.subpath or "")
                     for v in self.volumes or []],
            dockerfile=self.build_info.dockerfile_content if self.build_info else None,
            context_hashes=(self.build_info.context_hashes or []) if self.build_info else [],
        )


class NetworkSettingsBody(msgspec.Struct, rename="camel", kw_only=True):
    """`POST /api/sandbox/{id}/network-settings`: at least one of the two."""

    network_block_all: bool | None = None
    network_allow_list: str | None = None
    """Comma-separated IPv4 CIDRs (at most 10); an empty string removes the allow list."""


class ResizeBody(msgspec.Struct, kw_only=True):
    cpu: int | None = None
    memory: int | None = None
    disk: int | None = None


class LabelsBody(msgspec.Struct, kw_only=True):
    labels: dict[str, str]


class SandboxDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    id: str
    organization_id: str
    name: str
    user: str
    env: dict[str, str]
    labels: dict[str, str]
    public: bool
    network_block_all: bool
    kvm: bool
    target: str
    cpu: int
    gpu: int
    memory: int
    disk: int
    toolbox_proxy_url: str
    state: str
    desired_state: str
    snapshot: str
    error_reason: str | None
    recoverable: bool
    auto_stop_interval: int
    auto_archive_interval: int
    auto_delete_interval: int
    created_at: str
    updated_at: str
    last_activity_at: str
    runner_id: str
    volumes: list[dict[str, str]]
    backup_state: str
    backup_created_at: str | None
    network_allow_list: str | None
    oom_kills: int
    """Processes killed in the sandbox for exceeding its memory limit (the sandbox itself survives)."""
    last_oom_at: str | None
    build_info: SandboxBuildInfoDto | None = None


class ListSandboxesDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    items: list[SandboxDto]
    next_cursor: str | None


class ToolboxUrlDto(msgspec.Struct, kw_only=True):
    url: str


class LabelsDto(msgspec.Struct, kw_only=True):
    labels: dict[str, str]


class EventDto(msgspec.Struct, rename="camel", kw_only=True):
    version: int
    type: str
    occurred_at: str
    data: dict[str, Any]
    meta: dict[str, str]


class EventsDto(msgspec.Struct, kw_only=True):
    items: list[EventDto]


def iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def sandbox_dto(sandbox: Sandbox, toolbox_proxy_url: str, last_activity: Any = None) -> SandboxDto:
    return SandboxDto(
        id=sandbox.id, organization_id=sandbox.organization_id, name=sandbox.name, user=sandbox.user,
        env=sandbox.env, labels=sandbox.labels, public=sandbox.public, network_block_all=sandbox.network_block_all,
        kvm=False, target=sandbox.target, cpu=sandbox.cpu, gpu=sandbox.gpu, memory=sandbox.memory,
        disk=sandbox.disk, toolbox_proxy_url=toolbox_proxy_url, state=sandbox.state,
        desired_state=sandbox.desired_state, snapshot=sandbox.snapshot, error_reason=sandbox.error_reason,
        recoverable=sandbox.recoverable, auto_stop_interval=sandbox.auto_stop_interval,
        auto_archive_interval=sandbox.auto_archive_interval, auto_delete_interval=sandbox.auto_delete_interval,
        created_at=iso(sandbox.created_at), updated_at=iso(sandbox.updated_at),
        last_activity_at=iso(last_activity or sandbox.updated_at), runner_id=sandbox.runner_id,
        volumes=[{"volumeId": v.volume_id, "mountPath": v.mount_path, **({"subpath": v.subpath} if v.subpath else {})}
                 for v in sandbox.volumes],
        build_info=SandboxBuildInfoDto(snapshot_ref=sandbox.build.snapshot_ref,
                                       dockerfile_content=sandbox.build.dockerfile,
                                       context_hashes=sandbox.build.context_hashes, created_at=iso(sandbox.created_at),
                                       updated_at=iso(sandbox.updated_at)) if sandbox.build else None,
        backup_state="Completed" if sandbox.backup_image else "None",
        backup_created_at=iso(sandbox.backup_at) if sandbox.backup_at else None,
        network_allow_list=show_allow_list(sandbox.network_allow_list), oom_kills=sandbox.oom_kills,
        last_oom_at=iso(sandbox.last_oom_at) if sandbox.last_oom_at else None,
    )
