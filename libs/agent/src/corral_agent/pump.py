"""Pumping one running exec: merged output to the client, stdin to the child, the deadline.

The child's stdout and stderr are the same pipe, so the client gets one stream in the order the
process wrote it. A single poll loop per exec watches that pipe, the child's stdin, the child's
exit (a pidfd where the kernel has them), the client socket (hang-up, writability) and the
deadline, so a slow client, a hung-up client and a timeout are all handled without extra threads.
At most one output frame is pending towards the client at a time: while it is, the pipe is not
read and the child blocks on its writes, which keeps memory flat whatever the output size.
"""
from __future__ import annotations

import math
import os
import select
import socket
import subprocess
import time

from .exec_request import ExecRequest
from .framing import OUTPUT_CHUNK_BYTES, encode_frame, encode_output_frame
from .process_groups import kill_group

# Once the child has exited or been killed, output from its leftover background processes is
# read for at most this long; then the pipe is closed (they get EPIPE / SIGPIPE on write).
DRAIN_SECONDS = 0.2
# Where the kernel has no pidfd, how often the loop checks whether the child has exited.
EXIT_POLL_SECONDS = 0.05
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL
_MAX_POLL_MILLIS = 3600 * 1000
TIMEOUT_EXIT_CODE = 124  # as coreutils timeout(1)


def exit_frame(returncode: int, timed_out: bool) -> dict:
    """The final frame; a signal death reads as 128 + signal, a timeout as 124."""
    signum = -returncode if returncode < 0 else None
    if timed_out:
        code = TIMEOUT_EXIT_CODE
    elif signum is not None:
        code = 128 + signum
    else:
        code = returncode
    return {"type": "exit", "exitCode": code, "timedOut": timed_out, "signal": signum}


class Pump:
    """The poll loop of one running exec (see the module docstring)."""

    def __init__(
        self, proc: subprocess.Popen, out_fd: int, in_fd: int | None, request: ExecRequest, sock: socket.socket
    ) -> None:
        self.proc = proc
        self.out_fd: int | None = out_fd
        self.in_fd = in_fd
        self.pending_stdin = memoryview(request.stdin) if in_fd is not None and request.stdin else None
        self.sock = sock
        self.peer_fd = sock.fileno()
        self.outbox: memoryview | None = None
        self.deadline = time.monotonic() + request.timeout if request.timeout else None
        self.drain_until: float | None = None
        self.exited = False
        self.timed_out = False
        self.pidfd = _open_pidfd(proc.pid)
        self.poller = select.poll()

    def run(self) -> bytes | None:
        """Pump until the child is done; the encoded exit frame, or None if the client hung up."""
        self.sock.setblocking(False)
        self.poller.register(self.out_fd, select.POLLIN)
        self.poller.register(self.peer_fd, 0)  # hang-up and errors are always reported
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)
        if self.in_fd is not None:
            if self.pending_stdin is None:
                self._close_stdin()
            else:
                self.poller.register(self.in_fd, select.POLLOUT)
        while not (self.exited and self.out_fd is None and self.outbox is None):
            wait = self._next_wait()
            if wait is not None and wait <= 0:
                break  # the drain period is over
            for fd, events in self.poller.poll(_millis(wait)):
                if not self._on_event(fd, events):
                    self._kill()
                    return None
            if self.pidfd is None and not self.exited and self.proc.poll() is not None:
                self._on_exit()
        self._close_output()
        returncode = self.proc.wait()
        return encode_frame(exit_frame(returncode, self.timed_out))

    def flush_blocking(self) -> None:
        if self.outbox is not None:
            self.sock.sendall(self.outbox)
            self.outbox = None

    def close(self) -> None:
        """Release the pipes and reap the child (killed first if still running)."""
        self._close_output()
        self._close_stdin()
        if self.pidfd is not None:
            close_fds(self.pidfd)
            self.pidfd = None
        if self.proc.poll() is None:
            self._kill()
        self.proc.wait()

    def _next_wait(self) -> float | None:
        """Seconds the next poll may block (None: forever); kills the group at the deadline."""
        now = time.monotonic()
        if self.drain_until is not None:
            return self.drain_until - now
        if self.deadline is not None and now >= self.deadline:
            self._kill()
            self.timed_out = True
            self.drain_until = now + DRAIN_SECONDS
            return DRAIN_SECONDS
        wait = None if self.deadline is None else self.deadline - now
        if self.pidfd is None:
            wait = EXIT_POLL_SECONDS if wait is None else min(wait, EXIT_POLL_SECONDS)
        return wait

    def _on_event(self, fd: int, events: int) -> bool:
        """Handle one poll event; False if the client is gone."""
        if fd == self.peer_fd:
            if events & _GONE:
                return False
            return self._send_some()
        if fd == self.out_fd:
            self._read_output()
        elif fd == self.in_fd:
            self._write_stdin(events)
        elif fd == self.pidfd:
            self.poller.unregister(fd)
            self._on_exit()
        return True

    def _read_output(self) -> None:
        chunk = os.read(self.out_fd, OUTPUT_CHUNK_BYTES)
        if not chunk:
            self._close_output()
            return
        # Stop reading until this frame is out: the child blocks on a full pipe meanwhile.
        self.outbox = memoryview(encode_output_frame(chunk))
        self.poller.unregister(self.out_fd)
        self.poller.modify(self.peer_fd, select.POLLOUT)

    def _send_some(self) -> bool:
        if self.outbox is None:
            return True
        try:
            sent = self.sock.send(self.outbox)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        self.outbox = self.outbox[sent:] if sent < len(self.outbox) else None
        if self.outbox is None:
            self.poller.modify(self.peer_fd, 0)
            if self.out_fd is not None:
                self.poller.register(self.out_fd, select.POLLIN)
        return True

    def _write_stdin(self, events: int) -> None:
        if events & select.POLLOUT and self.pending_stdin is not None:
            try:
                written = os.write(self.in_fd, self.pending_stdin)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the child closed its stdin: the rest is not wanted
                written = len(self.pending_stdin)
            self.pending_stdin = self.pending_stdin[written:] if written < len(self.pending_stdin) else None
            if self.pending_stdin is not None:
                return
        self._close_stdin()

    def _on_exit(self) -> None:
        self.exited = True
        if self.drain_until is None:
            self.drain_until = time.monotonic() + DRAIN_SECONDS

    def _kill(self) -> None:
        if not self.exited:
            kill_group(self.proc.pid)

    def _close_output(self) -> None:
        if self.out_fd is not None:
            if self.outbox is None:
                self.poller.unregister(self.out_fd)
            close_fds(self.out_fd)
            self.out_fd = None

    def _close_stdin(self) -> None:
        if self.in_fd is not None:
            try:
                self.poller.unregister(self.in_fd)
            except KeyError:
                pass
            close_fds(self.in_fd)
            self.in_fd = None
            self.pending_stdin = None


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _millis(seconds: float | None) -> int | None:
    if seconds is None:
        return None
    return min(_MAX_POLL_MILLIS, max(0, int(math.ceil(seconds * 1000))))


def close_fds(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
