"""The Volume aggregate: storage that outlives sandboxes. Pure folds and decisions."""

from __future__ import annotations

import posixpath
import re
from datetime import datetime
from typing import Any

import msgspec

from corral_contracts import snapshot_manager as facts
from corral_contracts import volume as ev
from corral_contracts.volume import VolumeMount

from .errors import InvalidRequest, InvalidState

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
RESERVED = ("/opt/corral", "/run/corral", "/proc", "/sys", "/dev")
"""Mount paths a volume may not take: the agent's, and the kernel's."""


class Volume(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    organization_id: str
    name: str
    state: str
    created_at: datetime
    updated_at: datetime
    error_reason: str | None = None
    last_used_at: datetime | None = None


def evolve(volume: Volume | None, event: Any, version: int, at: datetime) -> Volume | None:
    if isinstance(event, ev.VolumeCreated):
        return Volume(id=event.volume_id, version=version, organization_id=event.organization_id, name=event.name,
                      state="pending_create", created_at=at, updated_at=at)
    if volume is None:
        return None
    state = ev.state_after(event)
    if state is None:
        return volume
    change: dict[str, Any] = {"version": version, "updated_at": at, "state": state}
    if isinstance(event, ev.VolumeFailed):
        change["error_reason"] = event.reason
    return msgspec.structs.replace(volume, **change)


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise InvalidRequest("volume name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")


def request_delete(volume: Volume, mounted_by: int) -> list[Any]:
    if volume.state in ("pending_delete", "deleting", "deleted"):
        return []
    if mounted_by:
        raise InvalidState(f"Volume {volume.name} is in use by {mounted_by} sandbox(es); delete them first")
    return [ev.VolumeDeleteRequested(volume_id=volume.id),
            ev.VolumeNameReleased(organization_id=volume.organization_id, name=volume.name, volume_id=volume.id)]


def observe(volume: Volume, fact: Any) -> list[Any]:
    match fact:
        case facts.VolumeStorageReady():
            if volume.state in ("pending_create", "creating", "error"):
                return [ev.VolumeReady(volume_id=volume.id)]
        case facts.VolumeStorageFailed(reason=reason):
            if volume.state in ("pending_create", "creating", "pending_delete", "deleting"):
                return [ev.VolumeFailed(volume_id=volume.id, reason=reason)]
        case facts.VolumeStorageRemoved():
            if volume.state in ("pending_delete", "deleting"):
                return [ev.VolumeDeleted(volume_id=volume.id)]
    return []


def check_mount(mount_path: str, subpath: str) -> VolumeMount | None:
    """A mount as the runner will make it, or a 400: an absolute path outside the agent's and the
    kernel's, and a relative subpath that stays inside the volume."""
    if not mount_path.startswith("/") or posixpath.normpath(mount_path) == "/":
        raise InvalidRequest(f"mountPath must be an absolute path other than /, got {mount_path!r}")
    path = posixpath.normpath(mount_path)
    if any(path == r or path.startswith(r + "/") for r in RESERVED):
        raise InvalidRequest(f"mountPath {mount_path} is reserved")
    sub = posixpath.normpath(subpath).lstrip("/") if subpath else ""
    if sub in (".", ""):
        sub = ""
    if sub.startswith("..") or "\x00" in sub:
        raise InvalidRequest(f"subpath must stay inside the volume, got {subpath!r}")
    return None if path is None else VolumeMount(volume_id="", mount_path=path, subpath=sub)
