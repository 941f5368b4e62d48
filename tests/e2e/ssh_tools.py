"""Driving the real OpenSSH client (`ssh`, `scp`, `sftp`) against a stack's ssh-gateway."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from corral_stack.stack import Stack
from corral_testing.waiting import wait_until

TIMEOUT = 120


class OpenSsh:
    """One client identity: a temporary known_hosts (the gateway's key is learnt once, then checked)."""

    def __init__(self, stack: Stack, known_hosts: Path, source: str | None = None, log_level: str = "ERROR"):
        self.stack = stack
        self.log_level = log_level
        """INFO shows the gateway's banners (a sandbox being started); ERROR only errors."""
        self.known_hosts = known_hosts
        self.source = source
        """A local address to connect from (-b), so a test's failed logins are its own."""

    @property
    def host(self) -> str:
        return self.stack.config.host

    @property
    def port(self) -> int:
        return self.stack.config.ssh_port

    def options(self, strict: str = "accept-new") -> list[str]:
        options = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                   "-o", f"StrictHostKeyChecking={strict}", "-o", f"LogLevel={self.log_level}", "-o", "ConnectTimeout=60",
                   "-o", "ControlMaster=no"]
        if self.source:
            options += ["-o", f"BindAddress={self.source}"]
        return options

    def ssh(self, token: str, *args: str, input: bytes | None = None, strict: str = "accept-new",
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        """`ssh [options] token@host [command]`: leading `-` arguments are options, the rest the command."""
        argv = ["ssh", *self.options(strict), "-p", str(self.port), *_split(token, self.host, args)]
        if input is not None:
            return subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)

    def scp(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["scp", *self.options(), "-P", str(self.port), *args], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def sftp(self, token: str, batch: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["sftp", *self.options(), "-P", str(self.port), "-b", "-", f"{token}@{self.host}"],
                              input=batch.encode(), capture_output=True, timeout=timeout)

    def remote(self, token: str, path: str) -> str:
        return f"{token}@{self.host}:{path}"

    def terminal(self, token: str, *args: str, cols: int = 80, rows: int = 24) -> "Terminal":
        argv = ["ssh", *self.options(), "-p", str(self.port), *_split(token, self.host, ("-tt", *args))]
        return Terminal(argv, cols, rows)

    def popen(self, token: str, *args: str) -> subprocess.Popen[bytes]:
        """A long-lived client (`-N`, a sleeping command): the caller ends it."""
        argv = ["ssh", *self.options(), "-p", str(self.port), *_split(token, self.host, args)]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def end(client: subprocess.Popen[bytes], grace: float = 10.0) -> bytes:
    """Stop a client from `OpenSsh.popen` and return what it wrote to stderr. SIGTERM first; SIGKILL if it has
    not exited after `grace` seconds (ssh sends its disconnect before it exits, and a process that started
    with SIGTERM ignored keeps ignoring it)."""
    client.terminate()
    try:
        return client.communicate(timeout=grace)[1]
    except subprocess.TimeoutExpired:
        client.kill()
        return client.communicate(timeout=30)[1]


def _split(token: str, host: str, args: tuple[str, ...]) -> list[str]:
    """Options first, then `token@host`, then the remote command."""
    options = []
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        options.append(option)
        if option in ("-L", "-R", "-o", "-b") and rest:
            options.append(rest.pop(0))
    return [*options, f"{token}@{host}", *rest]


def poll_until(predicate, timeout: float = 60.0, message: str = "condition not met"):  # type: ignore[no-untyped-def]
    """The shared synchronous wait, with this module's defaults."""
    return wait_until(predicate, timeout=timeout, interval=0.1, message=message)


class Terminal:
    """`ssh -tt` on a real local PTY of a given size: read its screen, type, resize the window."""

    def __init__(self, argv: list[str], cols: int, rows: int):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the PTY is its terminal
            try:
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.resize(cols, rows, signal_child=False)
        self.seen = bytearray()

    def resize(self, cols: int, rows: int, signal_child: bool = True) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if signal_child:
            os.kill(self.pid, signal.SIGWINCH)

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read_until(self, marker: bytes, timeout: float = 60.0) -> bytes:
        """Everything seen since the last call, once `marker` is among it."""
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while marker not in self.seen[start:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"never saw {marker!r}; the screen ends with {bytes(self.seen[-300:])!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the session ended before {marker!r}: {bytes(self.seen[-300:])!r}")
                self.seen += chunk
        return bytes(self.seen[start:])

    def wait(self, timeout: float = 60.0) -> int:
        """The ssh client's exit status (reading what is left on the way)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:
                    pass
        raise AssertionError("the ssh client did not exit")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
