"""Run directories on the host, bounded: each is a small tmpfs of its own.

A sandbox writes into its run directory (its agent's socket, its sessions' logs), which lives on the
host: on the host's disk it could fill it. Mounted as a size-limited tmpfs, it holds at most
`size` bytes, and what is written there is charged to the writer's memory cgroup, the sandbox's.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


def ensure_bounded(path: Path, size_bytes: int) -> bool:
    """Create `path` as a tmpfs of `size_bytes` (mode 0777: the sandbox's user, any uid, makes its socket
    there); True when it is one now. Idempotent; refused when not root (logged, the caller decides)."""
    path.mkdir(parents=True, exist_ok=True)
    if not is_mounted(path):
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0777,nosuid,nodev",
                               "corral-run", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            log.warning("run directory %s is not bounded (mount refused: %s)", path, done.stderr.strip())
            path.chmod(0o777)
            return False
    return True


def release(path: Path) -> None:
    """Unmount (if mounted) and remove the run directory."""
    if is_mounted(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True)
    shutil.rmtree(path, ignore_errors=True)
