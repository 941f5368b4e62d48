"""Packing the agent into one read-only zipapp, byte-for-byte reproducible (host side).

The archive holds the agent modules (not the host-only `client` and `bundle`), a generated
`corral_agent/_bundled_version.py` so the agent reports its version without hashing anything at
run time (hashlib alone would cost it ~4 MB of RSS), and a `__main__.py` that runs the server.
Entries are stored uncompressed, sorted, with a fixed timestamp and mode, so the same sources
always give the same bytes and callers can compare hashes.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipapp
import zipfile
from pathlib import Path

PACKAGE = "corral_agent"
PACKAGE_DIR = Path(__file__).resolve().parent
HOST_ONLY_MODULES = frozenset({"client.py", "bundle.py"})
VERSION_MODULE = "_bundled_version.py"
INTERPRETER = "/usr/bin/env python3"
ARCHIVE_MODE = 0o755
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ENTRY_MODE = 0o100644  # a regular file, rw-r--r--
_MAIN = b"from corral_agent.command_line import main\n\nraise SystemExit(main())\n"


def agent_sources() -> dict[str, bytes]:
    """Archive name -> content of every module the agent runs, sorted by name."""
    return {
        f"{PACKAGE}/{path.name}": path.read_bytes()
        for path in sorted(PACKAGE_DIR.glob("*.py"))
        if path.name not in HOST_ONLY_MODULES and path.name != VERSION_MODULE
    }


def agent_version(sources: dict[str, bytes] | None = None) -> str:
    """A short hash of the agent sources: what the agent reports in `pong.version`."""
    digest = hashlib.sha256()
    for name, content in sorted((agent_sources() if sources is None else sources).items()):
        digest.update(name.encode("utf-8") + b"\0" + len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.hexdigest()[:12]


def build_zipapp(dest: Path) -> Path:
    """Write the zipapp to `dest` atomically (a temporary file in the same directory, renamed)."""
    dest = Path(dest)
    sources = agent_sources()
    members = dict(sources)
    members[f"{PACKAGE}/{VERSION_MODULE}"] = f'VERSION = "{agent_version(sources)}"\n'.encode("utf-8")
    members["__main__.py"] = _MAIN
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            zipapp.create_archive(io.BytesIO(_zip_bytes(members)), out, interpreter=INTERPRETER)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, ARCHIVE_MODE)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = _ENTRY_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, members[name])
    return buffer.getvalue()
