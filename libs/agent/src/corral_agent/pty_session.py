"""One PTY: a shell on a pseudo-terminal, in its own session, that outlives the clients attached to it.

The shell is the first of zsh, bash and sh, started interactive (not as a login shell: a login
shell's /etc/profile would reset PATH and drop the sandbox environment) with the agent's
environment overlay, the PTY's own variables, and TERM, HOME, USER, LOGNAME and SHELL set as a
login would set them. It is the session leader and the PTY is its controlling terminal, so job
control and Ctrl-C work as in any terminal. While it runs, a `PtyLoop` thread owns the master side
(see pty_loop.py); once it has exited the session keeps its scrollback and exit status, so a client
that attaches late still sees how it ended.
"""
from __future__ import annotations

import fcntl
import os
import signal
import struct
import termios
import threading
import time

from .errors import EXEC_FAILED, AgentError
from .framing import OUTPUT_CHUNK_BYTES, encode_frame, encode_output_frame
from .process_groups import ProcessGroups, prefer_for_oom

SCROLLBACK_BYTES = 64 * 1024  # what a (re)attaching client is shown of the output so far
DEFAULT_TERM = "xterm-256color"


def exit_frame(status: int) -> dict:
    """The final frame of an attached client, from a `waitpid` status: a signal death reads as 128 + N."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return {"type": "exit", "exitCode": 128 + signum, "signal": signum}
    return {"type": "exit", "exitCode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1, "signal": None}


class PtySession:
    """What is known about one PTY; `lock` guards the fields that the loop thread changes."""

    def __init__(self, session_id: str, *, cwd: str, envs: dict, cols: int, rows: int, lazy_start: bool,
                 shell: str | None, user: str, home: str, base_env: dict, command: str | None = None) -> None:
        self.id = session_id
        self.cwd = cwd
        self.envs = envs
        self.cols = cols
        self.rows = rows
        self.lazy_start = lazy_start
        self.created_at = _iso_now()
        self.shell = shell
        self.command = command
        self.env = _shell_environment(base_env, envs, shell, user, home)
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.master: int | None = None
        self.loop = None  # the PtyLoop while the shell runs or its last output is delivered
        self.exit: dict | None = None  # the exit frame once the shell is gone
        self.scrollback = bytearray()  # changed by the loop thread only, read once it is done

    @property
    def active(self) -> bool:
        return self.pid is not None and self.exit is None

    def info(self) -> dict:
        """The toolbox's PtySessionInfo."""
        return {"id": self.id, "active": self.active, "cols": self.cols, "rows": self.rows, "cwd": self.cwd,
                "envs": dict(self.envs), "createdAt": self.created_at, "lazyStart": self.lazy_start}

    def start(self, groups: ProcessGroups) -> None:
        """Start the shell and its loop thread (once; later calls do nothing)."""
        from .pty_loop import PtyLoop

        with self.lock:
            if self.pid is not None or self.exit is not None:
                return
            pid, master = _spawn(self.shell, self.cwd, self.env, self.cols, self.rows, self.command)
            self.pid, self.master = pid, master
            groups.add(pid, job=False)  # busy only while someone is attached (see PtyTable.busy)
            self.loop = PtyLoop(self, master, pid, groups)
        try:
            threading.Thread(target=self.loop.run, name="pty-" + self.id, daemon=True).start()
        except RuntimeError:  # no thread left (pids limit): the PTY cannot be served
            self.kill()
            self.loop.run()  # reaps the shell and closes the master on this thread
            raise AgentError(EXEC_FAILED, "the agent cannot start a thread for the PTY") from None

    def attach(self, connection) -> None:  # type: ignore[no-untyped-def]
        """Hand the client over: the loop streams to it from now on; an ended PTY is replayed here."""
        with self.lock:
            loop = self.loop
            if loop is not None:
                loop.attach(connection.sock.dup())
                return
        replay(connection.sock, self)

    def resize(self, cols: int, rows: int) -> None:
        with self.lock:
            self.cols, self.rows = cols, rows
            if self.master is not None:
                set_size(self.master, cols, rows)

    def kill(self) -> None:
        """SIGKILL every process of the shell's session (its jobs have process groups of their own)."""
        with self.lock:
            if self.pid is None and self.exit is None:  # a lazy PTY that never started: never will
                self.exit = {"type": "exit", "exitCode": 128 + signal.SIGKILL, "signal": int(signal.SIGKILL)}
            elif self.exit is None:  # not reaped yet: the pid is still ours
                kill_session(self.pid)

    def reap(self, block: bool = False) -> dict | None:
        """The exit frame if the shell has exited (reaped here, under the lock `kill` takes), else None."""
        with self.lock:
            if self.exit is None:
                try:
                    pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
                except ChildProcessError:  # reaped elsewhere: the status is lost
                    pid, status = self.pid, 255 << 8
                if pid == 0:
                    return None
                self.exit = exit_frame(status)
            return self.exit

    def close_master(self) -> None:
        with self.lock:
            if self.master is not None:
                os.close(self.master)
                self.master = None

    def loop_done(self) -> list:
        """The loop is leaving: later clients are replayed by `attach`; returns the sockets it was
        handed meanwhile (for the loop to replay)."""
        with self.lock:
            loop, self.loop = self.loop, None
            return loop.take_pending() if loop is not None else []


def replay(sock, session: PtySession) -> None:  # type: ignore[no-untyped-def]
    """Blocking: the attached frame, the scrollback and the exit frame to a client of an ended PTY."""
    sock.settimeout(10.0)
    sock.sendall(encode_frame({"type": "attached", "session": session.info()}))
    for frame in output_frames(session.scrollback):
        sock.sendall(frame)
    if session.exit is not None:
        sock.sendall(encode_frame(session.exit))


def output_frames(data: bytes) -> list:
    view = memoryview(data)
    return [encode_output_frame(bytes(view[i:i + OUTPUT_CHUNK_BYTES])) for i in range(0, len(view), OUTPUT_CHUNK_BYTES)]


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def kill_session(sid: int) -> None:
    """SIGKILL the processes whose session is `sid` (two passes, for children forked meanwhile)."""
    for _ in range(2):
        for pid in [sid] + [int(name) for name in _proc_entries() if name.isdigit()]:
            try:
                if os.getsid(pid) == sid:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _proc_entries() -> list:
    try:
        return os.listdir("/proc")
    except OSError:
        return []


def _spawn(shell: str | None, cwd: str, env: dict, cols: int, rows: int, command: str | None = None) -> tuple:
    """Fork the shell on a new PTY (running `command`, if given); returns (pid, master fd). The child runs
    nothing but ioctl, chdir and execve before the shell replaces it (no imports, no locks)."""
    if shell is None:
        raise AgentError(EXEC_FAILED, "no shell for the PTY: none of zsh, bash, sh is on PATH")
    argv = [shell, "-i"] if command is None else [shell, "-c", command]
    winsize = struct.pack("HHHH", rows, cols, 0, 0)
    report_r, report_w = os.pipe()  # close-on-exec: EOF means execve succeeded
    try:
        pid, master = os.forkpty()
    except OSError as error:
        os.close(report_r)
        os.close(report_w)
        raise AgentError(EXEC_FAILED, "cannot open a PTY: %s" % (error.strerror or error,)) from None
    if pid == 0:  # the child: stdin/stdout/stderr are the PTY's slave side, our controlling terminal
        try:
            os.close(report_r)
            fcntl.ioctl(0, termios.TIOCSWINSZ, winsize)
            os.chdir(cwd)
            prefer_for_oom()
            os.execve(shell, argv, env)
        except BaseException as error:  # noqa: B036 - nothing may escape the child
            try:
                os.write(report_w, str(getattr(error, "strerror", None) or error).encode("utf-8", "replace"))
            finally:
                os._exit(127)
    os.close(report_w)
    failure = _read_all(report_r)
    if failure:
        os.close(master)
        os.waitpid(pid, 0)
        raise AgentError(EXEC_FAILED, "cannot start %s: %s" % (shell, failure.decode("utf-8", "replace")))
    os.set_blocking(master, False)
    return pid, master


def _read_all(fd: int) -> bytes:
    data = b""
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return data
            data += chunk
    finally:
        os.close(fd)


def _shell_environment(base: dict, envs: dict, shell: str | None, user: str, home: str) -> dict:
    env = dict(base)
    env["TERM"] = DEFAULT_TERM  # what the client emulates, not whatever the agent inherited
    env.setdefault("HOME", home)
    env.setdefault("USER", user)
    env.setdefault("LOGNAME", user)
    if shell is not None:
        env["SHELL"] = shell
    env.update(envs)
    return env


def _iso_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (int(now * 1000) % 1000,)
