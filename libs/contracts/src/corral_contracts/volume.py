"""Events of the Volume aggregate (storage that outlives sandboxes), recorded by the api and published on
`evt.volume.*`, and of its name index (`evt.volume_name.*`).

States (Daytona's): `pending_create → ready` (the snapshot manager created the storage),
`pending_delete → deleted`, `error`. `state_after(event)` gives the state an event leads to.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec

VOLUME_STATES = ("creating", "ready", "pending_create", "pending_delete", "deleting", "deleted", "error")


class _VolumeEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "volume"
    volume_id: str


class VolumeCreated(_VolumeEvent):
    organization_id: str
    name: str


class VolumeReady(_VolumeEvent):
    pass


class VolumeFailed(_VolumeEvent):
    reason: str


class VolumeDeleteRequested(_VolumeEvent):
    pass


class VolumeDeleted(_VolumeEvent):
    pass


class VolumeNameClaimed(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "volume_name"
    organization_id: str
    name: str
    volume_id: str


class VolumeNameReleased(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "volume_name"
    organization_id: str
    name: str
    volume_id: str


VolumeEvent = Union[VolumeCreated, VolumeReady, VolumeFailed, VolumeDeleteRequested, VolumeDeleted,
                    VolumeNameClaimed, VolumeNameReleased]


def state_after(event: Any) -> str | None:
    match event:
        case VolumeCreated():
            return "pending_create"
        case VolumeReady():
            return "ready"
        case VolumeFailed():
            return "error"
        case VolumeDeleteRequested():
            return "pending_delete"
        case VolumeDeleted():
            return "deleted"
    return None


def docker_volume(volume_id: str) -> str:
    """The engine's named volume that holds a volume's data."""
    return f"corral-volume-{volume_id}"


class VolumeMount(msgspec.Struct, frozen=True, kw_only=True):
    volume_id: str
    mount_path: str
    subpath: str = ""
