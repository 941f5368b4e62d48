"""The thread that serves one running PTY: one poll loop over the terminal and its clients.

Output read from the terminal goes to the scrollback and, as `output` frames, to every attached
client; `input` frames from any client are queued and written to the terminal by this thread
alone, so keystrokes of several clients never interleave mid-write. A client that falls
`PAUSE_BYTES` behind pauses reading the terminal (the shell then blocks on its writes, so nothing
is lost and memory stays bounded); one that takes nothing for `STALL_SECONDS` while paused is
dropped (it may reattach and sees the scrollback). Clients come and go without affecting the
shell. When the shell exits, its last output is read for up to `DRAIN_SECONDS`, then every client
gets the exit frame and its connection is closed.
"""
from __future__ import annotations

import os
import select
import time

from .framing import OUTPUT_CHUNK_BYTES, encode_frame, encode_output_frame
from .pty_client import PtyClient
from .pty_session import SCROLLBACK_BYTES, PtySession, output_frames, replay

DRAIN_SECONDS = 0.2  # after the shell exits, output of its leftover background jobs is read this long
EXIT_POLL_SECONDS = 0.05  # where the kernel has no pidfd, how often the shell's exit is checked
FLUSH_SECONDS = 5.0  # after the exit, how long clients get to take their last frames
PAUSE_BYTES = 256 * 1024  # a client this far behind pauses reading the terminal
STALL_SECONDS = 30.0  # a client that stays that far behind without taking anything is dropped
INPUT_LIMIT = 1024 * 1024  # keystrokes queued for the terminal before clients stop being read
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL
_MASTER, _WAKE, _PIDFD = "master", "wake", "pidfd"  # what a polled fd stands for, beside clients


class PtyLoop:
    def __init__(self, session: PtySession, master: int, pid: int, groups) -> None:  # type: ignore[no-untyped-def]
        self.session = session
        self.master: int | None = master
        self.pid = pid
        self.groups = groups
        self.pidfd = _open_pidfd(pid)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.pending: list = []  # sockets handed over by `attach` (under the session lock)
        self.clients: dict = {}  # fd -> PtyClient
        self.to_terminal = bytearray()
        self.exit: dict | None = None
        self.drain_until: float | None = None
        self.flush_until: float | None = None

    # -- called by other threads, with the session lock held --------------------------------------
    def attach(self, sock) -> None:  # type: ignore[no-untyped-def]
        self.pending.append(sock)
        try:
            os.write(self.wake_w, b"\0")
        except OSError:  # the pipe is full: a wake-up is pending anyway
            pass

    def take_pending(self) -> list:
        pending, self.pending = self.pending, []
        return pending

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._serve()
        except Exception:  # a bug: do not leave a shell nobody can reach
            from .server import log
            import traceback

            log("PTY %s failed:\n%s" % (self.session.id, traceback.format_exc()))
            self.session.kill()
            self.exit = self.session.reap(block=True)
        finally:
            for sock in self.session.loop_done():
                self._replay(sock)
            self._close()

    def _serve(self) -> None:
        while not (self.flush_until is not None and (not self.clients or time.monotonic() >= self.flush_until)):
            poller, targets = self._poller()
            for fd, events in poller.poll(_millis(self._timeout())):
                self._dispatch(targets[fd], fd, events)
            now = time.monotonic()
            if self.exit is None and self.pidfd is None:
                self._on_exit()
            if self.exit is not None and self.flush_until is None and (self.master is None or now >= self.drain_until):
                self._finish()
            for client in list(self.clients.values()):
                if len(client.outbox) >= PAUSE_BYTES and now - client.progress_at > STALL_SECONDS:
                    self._drop(client)

    def _poller(self) -> tuple:
        """What to wait for now, and what each fd stands for (rebuilt each turn: registering is a dict
        insert, no system call; and an event never reaches a newcomer that reuses a closed fd)."""
        poller = select.poll()
        targets: dict = {self.wake_r: _WAKE}
        poller.register(self.wake_r, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
            targets[self.pidfd] = _PIDFD
        if self.master is not None:
            paused = any(len(c.outbox) >= PAUSE_BYTES for c in self.clients.values())
            events = (0 if paused else select.POLLIN) | (select.POLLOUT if self.to_terminal else 0)
            if events:  # never registered idle: a hung-up terminal would be reported in a busy loop
                poller.register(self.master, events)
                targets[self.master] = _MASTER
        reading = len(self.to_terminal) < INPUT_LIMIT
        for fd, client in self.clients.items():
            poller.register(fd, (select.POLLOUT if client.outbox else 0) | (select.POLLIN if reading else 0))
            targets[fd] = client
        return poller, targets

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [d - now for d in (self.drain_until, self.flush_until) if d is not None]
        if self.exit is None and self.pidfd is None:
            deadlines.append(EXIT_POLL_SECONDS)
        if any(len(c.outbox) >= PAUSE_BYTES for c in self.clients.values()):
            deadlines.append(1.0)
        return min(deadlines) if deadlines else None

    def _dispatch(self, target: object, fd: int, events: int) -> None:
        if target is _MASTER:
            if fd != self.master:
                return  # closed earlier in this turn
            if events & select.POLLOUT:
                self._write_terminal()
            if events & (select.POLLIN | _GONE) and self.master is not None:
                self._read_terminal()
        elif target is _WAKE:
            _drain(self.wake_r)
            with self.session.lock:
                pending = self.take_pending()
            for sock in pending:
                self._add_client(sock)
        elif target is _PIDFD:
            if fd == self.pidfd:
                self._on_exit()
        else:
            client: PtyClient = target  # type: ignore[assignment]
            if self.clients.get(fd) is not client:
                return  # dropped earlier in this turn
            if events & select.POLLIN:
                self._read_client(client)
            elif events & _GONE:
                self._drop(client)
            if events & select.POLLOUT and fd in self.clients:
                self._send(client)

    # -- the terminal -----------------------------------------------------------------------------
    def _read_terminal(self) -> None:
        try:
            data = os.read(self.master, OUTPUT_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: no process has the terminal open any more
            data = b""
        if not data:
            self._close_master()
            return
        scrollback = self.session.scrollback
        scrollback += data
        if len(scrollback) > SCROLLBACK_BYTES:
            del scrollback[: len(scrollback) - SCROLLBACK_BYTES]
            newline = scrollback.find(b"\n", 0, 4096)  # start the replay at a line
            if newline >= 0:
                del scrollback[: newline + 1]
        frame = encode_output_frame(data)
        for client in list(self.clients.values()):
            client.queue(frame)
            self._send(client)

    def _write_terminal(self) -> None:
        if not self.to_terminal or self.master is None:
            return
        try:
            written = os.write(self.master, self.to_terminal)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the terminal is gone: nobody reads the keystrokes
            written = len(self.to_terminal)
        del self.to_terminal[:written]

    def _close_master(self) -> None:
        self.master = None
        self.session.close_master()

    def _on_exit(self) -> None:
        if self.pidfd is not None:
            _close_fd(self.pidfd)
            self.pidfd = None
        self.exit = self.session.reap()
        if self.exit is not None:
            self.groups.discard(self.pid)
            self.drain_until = time.monotonic() + DRAIN_SECONDS

    def _finish(self) -> None:
        if self.master is not None:
            self._close_master()
        self.flush_until = time.monotonic() + FLUSH_SECONDS
        final = encode_frame(self.exit)
        for client in list(self.clients.values()):
            client.closing = True
            client.queue(final)
            self._send(client)

    # -- the clients ------------------------------------------------------------------------------
    def _add_client(self, sock) -> None:  # type: ignore[no-untyped-def]
        client = PtyClient(sock)
        client.queue(encode_frame({"type": "attached", "session": self.session.info()}))
        for frame in output_frames(self.session.scrollback):
            client.queue(frame)
        if self.flush_until is not None:
            client.closing = True
            client.queue(encode_frame(self.exit))
        self.clients[sock.fileno()] = client
        self._send(client)

    def _read_client(self, client: PtyClient) -> None:
        keystrokes = client.receive()
        if keystrokes is None:
            self._drop(client)
        elif keystrokes:
            self.to_terminal += keystrokes
            self._write_terminal()  # right away: keystroke latency

    def _send(self, client: PtyClient) -> None:
        if not client.send():
            self._drop(client)

    def _drop(self, client: PtyClient) -> None:
        self.clients.pop(client.sock.fileno(), None)
        client.close()

    def _replay(self, sock) -> None:  # type: ignore[no-untyped-def]
        try:
            sock.setblocking(True)
            replay(sock, self.session)
        except OSError:
            pass
        finally:
            sock.close()

    def _close(self) -> None:
        for client in list(self.clients.values()):
            self._drop(client)
        if self.master is not None:
            self._close_master()
        _close_fd(self.pidfd, self.wake_r, self.wake_w)
        self.pidfd = None


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def _millis(seconds: float | None) -> int | None:
    if seconds is None:
        return None
    return max(0, int(seconds * 1000 + 0.999))


def _close_fd(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
