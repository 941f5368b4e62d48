"""The poll loop of one `exec_stream`: stdout and stderr apart to the client, the client's stdin to the
process, EOF and signals, and the exit.

One loop watches the two output pipes, the process's stdin, the client socket, and the process's exit
(a pidfd where the kernel has one). At most one output frame is pending towards the client: while it is,
the pipes are not read and the process blocks on its writes. Stdin the process has not read yet is held
up to `STDIN_BACKLOG` bytes; beyond that the client socket is not read, so the client is slowed down in
turn. Memory stays flat whatever flows through.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time

from .framing import (
    MUX_EOF,
    MUX_EXIT,
    MUX_HEADER_BYTES,
    MUX_SIGNAL,
    MUX_STDERR,
    MUX_STDIN,
    MUX_STDOUT,
    OUTPUT_CHUNK_BYTES,
    FrameError,
    encode_mux,
    mux_header,
)
from .process_groups import kill_group
from .pump import DRAIN_SECONDS, EXIT_POLL_SECONDS, _millis, _open_pidfd, close_fds

STDIN_BACKLOG = 1024 * 1024
RECV_BYTES = 256 * 1024
SIGNALS = frozenset({"ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1",
                     "USR2", "CONT", "STOP", "TSTP", "WINCH"})
"""Signals a client may send (SSH's names, without `SIG`)."""
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


class _ClientGone(Exception):
    pass


def exit_payload(returncode: int) -> bytes:
    """A signal death reads as 128 + N with the signal's name, as shells report it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name[3:]
        except ValueError:
            name = str(-returncode)
        return json.dumps({"exitCode": 128 - returncode, "signal": name}).encode()
    return json.dumps({"exitCode": returncode, "signal": None}).encode()


class StreamPump:
    def __init__(self, proc: subprocess.Popen, in_fd: int, out_fd: int, err_fd: int, sock: socket.socket) -> None:
        self.proc = proc
        self.in_fd: int | None = in_fd
        self.outputs = {out_fd: MUX_STDOUT, err_fd: MUX_STDERR}
        self.sock = sock
        self.peer_fd = sock.fileno()
        self.outbox: memoryview | None = None
        self.inbox = bytearray()  # client bytes not parsed yet
        self.stdin = bytearray()  # stdin bytes the process has not read yet
        self.stdin_eof = False
        self.exited = False
        self.drain_until: float | None = None
        self.pidfd = _open_pidfd(proc.pid)
        os.set_blocking(in_fd, False)

    def run(self) -> bytes | None:
        """Pump until the process is done: the encoded exit frame, or None if the client hung up."""
        self.sock.setblocking(False)
        try:
            while not (self.exited and not self.outputs and self.outbox is None):
                self._step()
        except _ClientGone:
            self._kill()
            return None
        return encode_mux(MUX_EXIT, exit_payload(self.proc.wait()))

    def _step(self) -> None:
        now = time.monotonic()
        if self.drain_until is not None and now >= self.drain_until:
            for fd in list(self.outputs):  # leftover background processes hold the pipes: let go
                self._close_output(fd)
            if self.outbox is None:
                return
        poller = select.poll()
        if self.outbox is None:
            for fd in self.outputs:
                poller.register(fd, select.POLLIN)
        peer = 0 if len(self.stdin) >= STDIN_BACKLOG else select.POLLIN
        poller.register(self.peer_fd, peer | (select.POLLOUT if self.outbox is not None else 0))
        if self.in_fd is not None and self.stdin:
            poller.register(self.in_fd, select.POLLOUT)
        if self.pidfd is not None and not self.exited:
            poller.register(self.pidfd, select.POLLIN)
        wait = None if self.drain_until is None else max(0.0, self.drain_until - now)
        if self.pidfd is None and not self.exited:
            wait = EXIT_POLL_SECONDS if wait is None else min(wait, EXIT_POLL_SECONDS)
        for fd, events in poller.poll(_millis(wait)):
            if fd == self.peer_fd:
                self._on_peer(events)
            elif fd in self.outputs:
                if self.outbox is None:  # one pending frame at most: the other pipe waits its turn
                    self._read_output(fd)
            elif fd == self.in_fd:
                self._write_stdin()
            elif fd == self.pidfd:
                self._on_exit()
        if self.pidfd is None and not self.exited and self.proc.poll() is not None:
            self._on_exit()

    # --- the client -------------------------------------------------------------------------------

    def _on_peer(self, events: int) -> None:
        if events & select.POLLIN:
            try:
                data = self.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                raise _ClientGone() from None
            if data == b"":
                raise _ClientGone()
            if data:
                self.inbox += data
                self._parse()
        elif events & _GONE:
            raise _ClientGone()
        if events & select.POLLOUT and self.outbox is not None:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                raise _ClientGone() from None
            self.outbox = self.outbox[sent:] if sent < len(self.outbox) else None

    def _parse(self) -> None:
        while len(self.inbox) >= MUX_HEADER_BYTES:
            try:
                channel, length = mux_header(bytes(self.inbox[:MUX_HEADER_BYTES]))
            except FrameError:
                raise _ClientGone() from None
            if len(self.inbox) < MUX_HEADER_BYTES + length:
                return
            payload = bytes(self.inbox[MUX_HEADER_BYTES:MUX_HEADER_BYTES + length])
            del self.inbox[:MUX_HEADER_BYTES + length]
            if channel == MUX_STDIN:
                if self.in_fd is not None and not self.stdin_eof:
                    self.stdin += payload
            elif channel == MUX_EOF:
                self.stdin_eof = True
            elif channel == MUX_SIGNAL:
                self._signal(payload.decode("ascii", "replace"))
            else:
                raise _ClientGone()  # not this protocol: stop
        if self.stdin_eof and not self.stdin:
            self._close_stdin()

    def _signal(self, name: str) -> None:
        name = name.upper()[3:] if name.upper().startswith("SIG") else name.upper()
        if name in SIGNALS and not self.exited:
            try:
                os.killpg(self.proc.pid, getattr(signal, "SIG" + name))
            except (ProcessLookupError, PermissionError, AttributeError):
                pass

    def flush_blocking(self) -> None:
        if self.outbox is not None:
            self.sock.sendall(self.outbox)
            self.outbox = None

    # --- the process ------------------------------------------------------------------------------

    def _read_output(self, fd: int) -> None:
        try:
            chunk = os.read(fd, OUTPUT_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        if not chunk:
            self._close_output(fd)
            return
        self.outbox = memoryview(encode_mux(self.outputs[fd], chunk))

    def _write_stdin(self) -> None:
        try:
            written = os.write(self.in_fd, self.stdin)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the process closed its stdin: the rest is not wanted
            self.stdin.clear()
            self._close_stdin()
            return
        del self.stdin[:written]
        if not self.stdin and self.stdin_eof:
            self._close_stdin()

    def _on_exit(self) -> None:
        self.exited = True
        if self.drain_until is None:
            self.drain_until = time.monotonic() + DRAIN_SECONDS
        self.stdin.clear()
        self._close_stdin()

    def _kill(self) -> None:
        if not self.exited:
            kill_group(self.proc.pid)

    def _close_output(self, fd: int) -> None:
        if self.outputs.pop(fd, None) is not None:
            close_fds(fd)

    def _close_stdin(self) -> None:
        if self.in_fd is not None:
            close_fds(self.in_fd)
            self.in_fd = None

    def close(self) -> None:
        """Release the pipes and reap the process (killed first if still running)."""
        for fd in list(self.outputs):
            self._close_output(fd)
        self._close_stdin()
        if self.pidfd is not None:
            close_fds(self.pidfd)
            self.pidfd = None
        if self.proc.poll() is None:
            kill_group(self.proc.pid)
        self.proc.wait()
