"""Secrets kept under `CORRAL_HOME`: generated once, mode 0600, unless the environment provides them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_secret(path: Path, *, override: str | None = None, prefix: str = "") -> str:
    """The environment's value if given (and then also stored, so every service reads the same), else
    the stored one, else a new random one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if override:
        value = override
    elif path.exists():
        return path.read_text().strip()
    else:
        value = prefix + secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
    return value
