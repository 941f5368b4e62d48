"""Where the Docker engine that Corral starts keeps its data: a btrfs filesystem with quotas, so that
each sandbox's writable layer is bounded to its disk size (`storage_opt size`).

Most hosts keep /var/lib/docker on ext4, where Docker cannot bound a container's disk: `storage_opt
size` needs overlay2 on XFS with project quotas, or the btrfs driver with quotas. Kernels often lack
XFS quota support (this project's CI machine does), while btrfs quota groups are part of btrfs itself.
So when Corral starts the engine itself (no engine answered), it gives it a data root on btrfs held in
a sparse loop file (`/var/lib/corral/docker-btrfs.img`, mounted on `/var/lib/corral/docker`, simple
quotas on: kernel 6.7 or newer) and the `btrfs` storage driver; where simple quotas are not available
the engine keeps dockerd's default data root, unbounded, and says so. The file is made once and reused; only the mount is redone after
a reboot. An engine that Corral did not start is used as it is, and the runner reports whether it
bounds disks (`/api/health` → `diskLimits`).

`CORRAL_DOCKER_DATA_ROOT` chooses: unset → the btrfs loop file above; `default` → dockerd's own
default; any other value → that directory, as it is.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

Log = Callable[[str], None]

DEFAULT_BASE = Path("/var/lib/corral")
IMAGE_NAME = "docker-btrfs.img"
MOUNT_NAME = "docker"
MAX_SIZE = 256 * 1024**3
MIN_SIZE = 1024**3
FREE_SHARE = 0.8
"""The loop file is sparse: it may grow to this share of the free space it found when it was made."""


class StorageUnavailable(Exception):
    """A quota-capable data root cannot be prepared here (no loop devices, no btrfs, not root)."""


def engine_storage_args(env: dict[str, str], *, log: Log, install: Callable[[list[str]], None]) -> list[str]:
    """dockerd flags choosing its data root, per `CORRAL_DOCKER_DATA_ROOT` (see the module doc).

    When the btrfs root cannot be prepared, the engine starts on its default root and this says why:
    sandboxes then run without disk bounds, which the runner reports.
    """
    choice = env.get("CORRAL_DOCKER_DATA_ROOT", "")
    if choice == "default":
        return []
    if choice:
        return ["--data-root", choice]
    try:
        root = quota_data_root(DEFAULT_BASE, log=log, install=install)
    except StorageUnavailable as why:
        log(f"sandbox disk sizes will NOT be enforced: {why}")
        return []
    return ["--data-root", str(root), "--storage-driver", "btrfs"]


def quota_data_root(base: Path, *, log: Log, install: Callable[[list[str]], None], size: int | None = None) -> Path:
    """A btrfs filesystem with simple quotas on, mounted at `base/docker`: made, mounted and switched on as
    needed."""
    mount_point = base / MOUNT_NAME
    if not is_btrfs(mount_point):
        if os.geteuid() != 0:
            raise StorageUnavailable("preparing a btrfs data root needs root")
        if _tool("mkfs.btrfs") is None:
            install(["btrfs-progs"])
        image = base / IMAGE_NAME
        base.mkdir(parents=True, exist_ok=True)
        if not image.exists():
            size = size or default_size(base)
            log(f"making a {size / 1024**3:.0f} GiB sparse btrfs file {image} for the Docker engine's data")
            partial = image.with_suffix(".partial")
            with open(partial, "wb") as handle:
                handle.truncate(size)
            _run([_tool("mkfs.btrfs") or "mkfs.btrfs", "-q", str(partial)], "formatting it as btrfs")
            partial.rename(image)
        mount_point.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-o", "loop", str(image), str(mount_point)], f"mounting {image}")
        if not is_btrfs(mount_point):
            raise StorageUnavailable(f"{mount_point} was mounted but is not btrfs")
    ensure_simple_quotas(mount_point)
    log(f"the Docker engine keeps its data on {mount_point} (btrfs, simple quotas)")
    return mount_point


BTRFS_IOC_QUOTA_CTL = 0xC0109428
"""_IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args {u64 cmd; u64 status})."""
BTRFS_IOC_FS_INFO = 0x8400941F
"""_IOR(0x94, 31, struct btrfs_ioctl_fs_info_args): 1 KiB, the filesystem's id at bytes 16-32."""
QUOTA_DISABLE, QUOTA_ENABLE_SIMPLE = 2, 4


def ensure_simple_quotas(mount_point: Path) -> None:
    """Simple quotas (kernel 6.7+): a subvolume's usage is the extents it wrote, so a container's writable
    layer can be limited, without full qgroup accounting, whose cost grows with every snapshot (measured
    here: container removal went from 0.8 to 2.9 s within eight containers; with simple quotas it stays
    near 0.55 s). Full qgroups left by an earlier version are switched to simple ones."""
    mode = quota_mode(mount_point)
    if mode == "squota":
        return
    if mode == "qgroup":
        _quota_ctl(mount_point, QUOTA_DISABLE)
    try:
        _quota_ctl(mount_point, QUOTA_ENABLE_SIMPLE)
    except OSError as error:
        raise StorageUnavailable(f"this kernel cannot keep simple btrfs quotas ({error})") from error
    if quota_mode(mount_point) != "squota":
        raise StorageUnavailable(f"simple quotas did not take on {mount_point}")


def quota_mode(mount_point: Path) -> str:
    """`squota`, `qgroup` (full accounting) or `disabled`, as the kernel shows it under /sys/fs/btrfs."""
    fd = os.open(mount_point, os.O_RDONLY)
    try:
        info = fcntl.ioctl(fd, BTRFS_IOC_FS_INFO, bytes(1024))
    finally:
        os.close(fd)
    qgroups = Path("/sys/fs/btrfs") / str(uuid.UUID(bytes=bytes(info[16:32]))) / "qgroups"
    if not qgroups.is_dir():
        return "disabled"
    try:
        return (qgroups / "mode").read_text().strip()
    except OSError:
        return "qgroup"  # a kernel from before simple quotas


def _quota_ctl(mount_point: Path, command: int) -> None:
    fd = os.open(mount_point, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, BTRFS_IOC_QUOTA_CTL, struct.pack("QQ", command, 0))
    finally:
        os.close(fd)


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def unmount(base: Path) -> None:
    """Undo `quota_data_root`'s mount (tests; the engine using it must be stopped first)."""
    mount_point = base / MOUNT_NAME
    if is_btrfs(mount_point):
        _run(["umount", str(mount_point)], f"unmounting {mount_point}")


def default_size(base: Path) -> int:
    free = shutil.disk_usage(base).free
    size = min(int(free * FREE_SHARE), MAX_SIZE)
    if size < MIN_SIZE:
        raise StorageUnavailable(f"only {free / 1024**3:.1f} GiB free under {base}")
    return size


def is_btrfs(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """`path` is the mount point of a btrfs filesystem."""
    target = str(path.resolve()) if path.exists() else str(path)
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts, rest = fields.split(), tail.split()
        if len(parts) < 5 or len(rest) < 3 or _unescape(parts[4]) != target:
            continue
        if rest[0] == "btrfs":
            return True
    return False


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StorageUnavailable(f"{what} failed: {error}") from error
    if done.returncode != 0:
        raise StorageUnavailable(f"{what} failed: {(done.stderr or done.stdout).strip()[-300:]}")
