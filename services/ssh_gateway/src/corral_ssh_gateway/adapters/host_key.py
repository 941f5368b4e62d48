"""The gateway's host key: generated once (ed25519) and kept (mode 0600), so clients never see it change."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh


def load_or_create(path: Path) -> asyncssh.SSHKey:
    """Synchronous (file I/O and key generation): call it off the event loop."""
    try:
        return asyncssh.read_private_key(str(path))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="corral ssh-gateway")
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.export_private_key())
    try:
        os.link(temporary, path)  # another gateway may have made one meanwhile: the first one wins
    except FileExistsError:
        return asyncssh.read_private_key(str(path))
    finally:
        os.unlink(temporary)
    return key
