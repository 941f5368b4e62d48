"""The real OpenSSH client (`ssh`, `scp`, `sftp`) for tests, installed from the machine's apt sources when
missing (a fresh Debian machine has no openssh-client)."""

from __future__ import annotations

import os
import shutil
import subprocess

PROGRAMS = ("ssh", "scp", "sftp")


def ensure_openssh() -> None:
    if all(shutil.which(p) for p in PROGRAMS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("the OpenSSH client (ssh, scp, sftp) is missing and cannot be installed here; "
                           "install openssh-client")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-client"], check=True,
                   env=env, timeout=600)
    missing = [p for p in PROGRAMS if not shutil.which(p)]
    if missing:
        raise RuntimeError(f"openssh-client installed, but {missing} still missing")
