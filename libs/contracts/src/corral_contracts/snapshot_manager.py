"""The snapshot manager's context: commands it consumes (derived by the api's process manager from
recorded Snapshot and Volume events, on `cmd.snapshot_manager.<builds|volumes>.<name>`), the facts it
reports (`evt.snapshot_manager.*`, recorded by the api), and build-log chunks (`logs.snapshot.<id>`).
"""

from __future__ import annotations

from typing import ClassVar, Union

import msgspec


class _BuildCommand(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __target__: ClassVar[str] = "builds"
    snapshot_id: str


class BuildSnapshot(_BuildCommand):
    """Make `ref` exist: import `image_name` (source `image`) or build `dockerfile` (source `dockerfile`),
    check it has python3 ≥ 3.9 (adding it when it can), and report `ImageReady` or `ImageBuildFailed`."""

    ref: str
    source: str
    image_name: str = ""
    dockerfile: str = ""
    context_hashes: list[str] = []
    attempt: int = 1


class RemoveSnapshotImage(_BuildCommand):
    ref: str
    keep_image: bool = False
    """Another snapshot (of another organization, same content) still uses the image: keep it."""


class _VolumeCommand(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __target__: ClassVar[str] = "volumes"
    volume_id: str


class CreateVolumeStorage(_VolumeCommand):
    pass


class DeleteVolumeStorage(_VolumeCommand):
    pass


SnapshotManagerCommand = Union[BuildSnapshot, RemoveSnapshotImage, CreateVolumeStorage, DeleteVolumeStorage]


class _Fact(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    __aggregate__: ClassVar[str] = "snapshot_manager"


class ImageBuildStarted(_Fact):
    snapshot_id: str
    state: str = "building"
    """`building` (a Dockerfile) or `pulling` (an image source)."""


class ImageReady(_Fact):
    snapshot_id: str
    ref: str
    size: int = 0
    python: str = ""
    entrypoint: list[str] = []


class ImageBuildFailed(_Fact):
    snapshot_id: str
    reason: str
    state: str = "build_failed"


class ImageRemoved(_Fact):
    snapshot_id: str


class VolumeStorageReady(_Fact):
    volume_id: str


class VolumeStorageFailed(_Fact):
    volume_id: str
    reason: str


class VolumeStorageRemoved(_Fact):
    volume_id: str


SnapshotManagerFact = Union[ImageBuildStarted, ImageReady, ImageBuildFailed, ImageRemoved, VolumeStorageReady,
                            VolumeStorageFailed, VolumeStorageRemoved]


class BuildLogChunk(msgspec.Struct, frozen=True, kw_only=True):
    """Part of a build's log on `logs.snapshot.<id>`; the last chunk of an attempt has `end=True`."""

    snapshot_id: str
    attempt: int = 1
    seq: int
    text: str = ""
    end: bool = False
