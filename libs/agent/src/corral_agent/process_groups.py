"""Killing whole process groups: each exec's child leads its own session and process group."""
from __future__ import annotations

import os
import signal
import threading


CHILD_OOM_SCORE_ADJ = b"500"
"""What the agent's children get: when the sandbox runs out of memory, the kernel kills what the
agent started before the agent itself (which keeps the default 0), so the sandbox stays reachable."""


def prefer_child_for_oom(pid: int) -> None:
    """The same from the parent, just after the child started: `preexec_fn` makes Python fork the whole
    agent instead of vfork and run Python in the child, which cost 2.4 ms of a 3.6 ms exec. The child's
    first instants run with the agent's score; should the sandbox run out of memory right then, the
    kernel still picks the larger process of equal score, which is not the 12 MB agent."""
    _raise_oom_score("/proc/%d/oom_score_adj" % pid)


def prefer_for_oom() -> None:
    """Run in a child between fork and exec: only raw system calls, no imports, no locks. Raising
    one's own score needs no privilege; should it be higher already, it is left alone."""
    _raise_oom_score("/proc/self/oom_score_adj")


def _raise_oom_score(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, CHILD_OOM_SCORE_ADJ)
        finally:
            os.close(fd)
    except OSError:  # the process is already gone, or its score is already higher
        pass


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
