"""Wire shapes of snapshots, volumes and build logs (Daytona's JSON, camelCase)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..domain.snapshot import Snapshot
from ..domain.volume import Volume


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


class BuildInfoBody(msgspec.Struct, rename="camel", kw_only=True):
    dockerfile_content: str
    context_hashes: list[str] | None = None


class CreateSnapshotBody(msgspec.Struct, rename="camel", kw_only=True):
    """`POST /api/snapshots`: an image (`imageName`) or a Dockerfile (`buildInfo`)."""

    name: str
    image_name: str | None = None
    entrypoint: list[str] | None = None
    cpu: int | None = None
    gpu: int | None = None
    memory: int | None = None
    disk: int | None = None
    build_info: BuildInfoBody | None = None
    region_id: str | None = None
    sandbox_class: str | None = None


class SandboxSnapshotBody(msgspec.Struct, rename="camel", kw_only=True):
    """`POST /api/sandbox/{id}/snapshot`."""

    name: str
    include_memory: bool | None = None


class BuildInfoDto(msgspec.Struct, rename="camel", kw_only=True):
    snapshot_ref: str
    dockerfile_content: str
    context_hashes: list[str]
    created_at: str
    updated_at: str


class SnapshotDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    id: str
    organization_id: str
    general: bool
    name: str
    image_name: str
    state: str
    size: float | None
    """GB."""
    entrypoint: list[str] | None
    cpu: int
    gpu: int
    mem: int
    disk: int
    error_reason: str | None
    created_at: str
    updated_at: str
    last_used_at: str | None
    source_sandbox_id: str | None
    ref: str
    build_info: BuildInfoDto | None
    region_ids: list[str]


class SnapshotPageDto(msgspec.Struct, rename="camel", kw_only=True):
    items: list[SnapshotDto]
    total: int
    page: int
    total_pages: int


class UrlDto(msgspec.Struct, kw_only=True):
    url: str


class CreateVolumeBody(msgspec.Struct, kw_only=True):
    name: str | None = None


class VolumeDto(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    id: str
    name: str
    organization_id: str
    state: str
    created_at: str
    updated_at: str
    last_used_at: str | None
    error_reason: str | None


def snapshot_dto(snapshot: Snapshot, last_used: datetime | None, target: str = "local") -> SnapshotDto:
    build = BuildInfoDto(snapshot_ref=snapshot.ref, dockerfile_content=snapshot.dockerfile,
                         context_hashes=snapshot.context_hashes, created_at=iso(snapshot.created_at) or "",
                         updated_at=iso(snapshot.updated_at) or "") if snapshot.source == "dockerfile" else None
    return SnapshotDto(
        id=snapshot.id, organization_id=snapshot.organization_id, general=snapshot.general, name=snapshot.name,
        image_name=snapshot.image_name or snapshot.ref, state=snapshot.state,
        size=round(snapshot.size / 1e9, 3) if snapshot.size else None,
        entrypoint=snapshot.entrypoint or None, cpu=snapshot.cpu, gpu=snapshot.gpu, mem=snapshot.memory,
        disk=snapshot.disk, error_reason=snapshot.error_reason, created_at=iso(snapshot.created_at) or "",
        updated_at=iso(snapshot.updated_at) or "", last_used_at=iso(last_used),
        source_sandbox_id=snapshot.source_sandbox_id or None, ref=snapshot.ref, build_info=build,
        region_ids=[target],
    )


def volume_dto(volume: Volume) -> VolumeDto:
    return VolumeDto(id=volume.id, name=volume.name, organization_id=volume.organization_id, state=volume.state,
                     created_at=iso(volume.created_at) or "", updated_at=iso(volume.updated_at) or "",
                     last_used_at=iso(volume.last_used_at), error_reason=volume.error_reason)
