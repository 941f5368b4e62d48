"""Killing whole process groups: each exec's child leads its own session and process group."""
from __future__ import annotations

import os
import signal
import threading


class ProcessGroups:
    """The process groups of the running execs, so that the agent can kill them on shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pgids: set[int] = set()

    def add(self, pgid: int) -> None:
        with self._lock:
            self._pgids.add(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._pgids.discard(pgid)

    def kill_all(self) -> None:
        with self._lock:
            pgids = list(self._pgids)
        for pgid in pgids:
            kill_group(pgid)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
