"""Killing whole process groups: each exec's child leads its own session and process group."""
from __future__ import annotations

import os
import signal
import threading


class ProcessGroups:
    """The process groups of the running execs, so that the agent can kill them on shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pgids: dict[int, bool] = {}  # pgid -> counts as a running job

    def add(self, pgid: int, job: bool = True) -> None:
        """`job=False` for a long-lived holder that is busy only when its area says so (a session's
        shell, an interpreter's worker): killed on shutdown, not counted."""
        with self._lock:
            self._pgids[pgid] = job

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._pgids.pop(pgid, None)

    def count(self) -> int:
        """The running jobs."""
        with self._lock:
            return sum(self._pgids.values())

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
