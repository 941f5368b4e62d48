"""A process session: one long-lived shell that runs its commands one after another.

Why completion detection survives any command text: the command is never fed to the shell as
input. It is written to a file, and the shell receives (on its stdin, which only the agent writes)
one fixed line per command:

    { command . '<dir>/cmd'; } <'<dir>/in' >|'<dir>/out' 2>|'<dir>/err'; printf '%s %s %s\\n' TOKEN ID "$?"

Sourcing runs the text in the shell itself, so `cd`, `export` and functions carry over, and a bare
`exit` (or an `exec`) ends the session. `command .` keeps a syntax error in the text from killing
the shell. Heredocs are parsed from the file and cannot swallow later commands; a command reading
stdin reads its own FIFO (fed by `input` requests), never the control line. The status goes to the
shell's own stdout, which the group's redirections hide from the command, and the agent sends the
next control line only after the previous status arrived. Background children that keep the output
FIFOs open do not delay completion: the status says when the command ended, and whatever they write
later is still appended to the log.

One pump thread per session polls the status pipe, the shell's exit and every open output FIFO,
and appends what it reads to each command's log file (see sessions_log), so memory stays flat.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
from collections import deque

from .errors import EXEC_FAILED, AgentError
from .process_groups import ProcessGroups, kill_group, prefer_for_oom
from .sessions_commands import NOT_RUN_EXIT_CODE, Command, exit_code_of
from .sessions_log import STDERR_MARK, STDOUT_MARK

SESSION_ENDED = "SESSION_ENDED"
EXIT_POLL_SECONDS = 0.05  # without pidfds: how often the pump checks whether the shell has exited
_READ_BYTES = 64 * 1024
_DRAIN_LIMIT_BYTES = 2 * 1024 * 1024  # what a completed command's pipes may still hold: read it now


class Session:
    def __init__(self, session_id: str, directory: str, shell: str, env: dict, cwd: str,
                 groups: ProcessGroups) -> None:
        self.id = session_id
        self.dir = directory
        self.groups = groups
        self.cond = threading.Condition()
        self.commands: dict[str, Command] = {}
        self.queue: deque[Command] = deque()
        self.running: Command | None = None
        self.ended = False  # the shell has exited
        self.closing = False  # deleted: the pump stops
        self.exit_code: int | None = None
        self.token = os.urandom(8).hex()
        self._source = "builtin ." if os.path.basename(shell) == "zsh" else "command ."
        self._readers: dict[int, tuple[Command, bytes]] = {}  # output FIFO fd -> (command, marker)
        self._status = b""
        self._status_open = True  # the shell's status pipe has not reached its end
        self._logged = False  # the pump appended to a log since it last woke the waiters
        os.makedirs(directory, mode=0o700)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        control_r, self._control_w = os.pipe()
        self._status_r, status_w = os.pipe()
        os.set_blocking(self._status_r, False)
        diagnostics = os.open(os.path.join(directory, "shell.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.proc = subprocess.Popen([shell], stdin=control_r, stdout=status_w, stderr=diagnostics, cwd=cwd,
                                         env=env, start_new_session=True, close_fds=True, preexec_fn=prefer_for_oom)
        except OSError as error:
            for fd in (self._wake_r, self._wake_w, self._control_w, self._status_r):
                os.close(fd)
            shutil.rmtree(directory, ignore_errors=True)
            raise AgentError(EXEC_FAILED, "cannot start %s: %s" % (shell, error.strerror or error)) from None
        finally:
            for fd in (control_r, status_w, diagnostics):
                os.close(fd)
        groups.add(self.proc.pid, job=False)  # busy only while a command runs (see Sessions.busy)
        self._pidfd = _open_pidfd(self.proc.pid)
        self._thread = threading.Thread(target=self._pump, name="session-pump", daemon=True)
        self._thread.start()

    # -- requests (any thread) ------------------------------------------------------------------

    def submit(self, text: str, echo_input: bool) -> Command:
        with self.cond:
            if self.ended or self.closing:
                raise AgentError(SESSION_ENDED, "session %s has ended" % (self.id,))
            command = Command.create(self.dir, text, echo_input)
            self.commands[command.id] = command
            self.queue.append(command)
        self._wake()
        return command

    def wait(self, command: Command, give_up) -> bool:  # type: ignore[no-untyped-def]
        """Block until the command has an exit code; False if `give_up()` said to stop first."""
        with self.cond:
            while command.exit_code is None:
                self.cond.wait(1.0)
                if command.exit_code is None and give_up():
                    return False
        return True

    def close(self) -> None:
        """Kill the shell's process group, stop the pump, release everything, delete the logs."""
        with self.cond:
            self.closing = True
            for command in self.commands.values():
                if command.exit_code is None:
                    command.finish(NOT_RUN_EXIT_CODE)
            self.cond.notify_all()
        kill_group(self.proc.pid)
        self._wake()
        self._thread.join(5.0)
        self.proc.wait()
        self.groups.discard(self.proc.pid)
        for fd in (self._wake_r, self._wake_w, self._control_w, self._status_r, self._pidfd):
            _close(fd)
        for command in self.commands.values():
            command.release()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the pump thread ------------------------------------------------------------------------

    def _pump(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(self._status_r, select.POLLIN)
        if self._pidfd is not None:
            poller.register(self._pidfd, select.POLLIN)
        while not self.closing:
            if self.ended and not self._readers:
                return  # nothing left that could still write
            timeout = None if self._pidfd is not None or self.ended else int(EXIT_POLL_SECONDS * 1000)
            events = poller.poll(timeout)
            if self.closing:
                return
            exited = False
            for fd, _ in events:
                if fd == self._wake_r:
                    _drain_wake(fd)
                elif fd == self._status_r:
                    self._read_status(poller)
                elif fd == self._pidfd:
                    exited = True
                elif fd in self._readers:
                    self._read_output(fd, poller)
            if not self.ended and (exited or (self._pidfd is None and self.proc.poll() is not None)):
                self._read_status(poller)
                self._on_shell_exit(poller)
            if not self.ended and self.running is None:
                self._start_next(poller)
            if self._logged:  # followers wait for more log
                self._logged = False
                with self.cond:
                    self.cond.notify_all()

    def _start_next(self, poller: select.poll) -> None:
        with self.cond:
            if not self.queue or self.closing:
                return
            command = self.queue.popleft()
            self.running = command
        for fd, mark in ((command.out_fd, STDOUT_MARK), (command.err_fd, STDERR_MARK)):
            self._readers[fd] = (command, mark)
            poller.register(fd, select.POLLIN)
        line = "{ %s %s; } <%s >|%s 2>|%s; printf '%%s %%s %%s\\n' %s %s \"$?\"\n" % (
            self._source, _quote(command.path("cmd")), _quote(command.path("in")), _quote(command.path("out")),
            _quote(command.path("err")), self.token, command.id)
        try:
            os.write(self._control_w, line.encode("utf-8", "surrogateescape"))
        except OSError:
            pass  # the shell is gone: its exit is noticed next and ends this command

    def _read_status(self, poller: select.poll) -> None:
        while self._status_open:
            try:
                chunk = os.read(self._status_r, 4096)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:  # the shell is exiting, or was replaced by `exec program`
                poller.unregister(self._status_r)
                self._status_open = False
                break
            self._status += chunk
        *lines, self._status = self._status.split(b"\n")
        for line in lines:
            parts = line.decode("ascii", "replace").split()
            running = self.running
            if len(parts) == 3 and parts[0] == self.token and running is not None and parts[1] == running.id:
                self._complete(running, int(parts[2]) if parts[2].isdigit() else 1, poller)

    def _complete(self, command: Command, exit_code: int, poller: select.poll) -> None:
        """Everything the command wrote before it ended is in its pipes now: log it, then the exit code."""
        for fd in (command.out_fd, command.err_fd):
            budget = _DRAIN_LIMIT_BYTES
            while fd in self._readers and budget > 0:
                count = self._read_output(fd, poller)
                if count is None:
                    break  # empty for now: the rest (if any) comes from background children
                budget -= count
        with self.cond:
            command.finish(exit_code)
            if self.running is command:
                self.running = None
            self.cond.notify_all()
        self._release_if_done(command)

    def _read_output(self, fd: int, poller: select.poll) -> int | None:
        """Log one chunk from an output FIFO: its size, 0 at its end, None if it has nothing now."""
        command, mark = self._readers[fd]
        try:
            chunk = os.read(fd, _READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            chunk = b""
        if chunk:
            command.log.append(mark, chunk)
            self._logged = True
            return len(chunk)
        poller.unregister(fd)
        del self._readers[fd]
        command.close_output(fd)
        self._release_if_done(command)
        return 0

    def _on_shell_exit(self, poller: select.poll) -> None:
        self.exit_code = exit_code_of(self.proc.wait())
        self.groups.discard(self.proc.pid)
        if self._status_open:
            poller.unregister(self._status_r)
            self._status_open = False
        if self._pidfd is not None:
            poller.unregister(self._pidfd)
        if self.running is not None:
            self._complete(self.running, self.exit_code, poller)
        with self.cond:
            self.ended = True
            for command in self.queue:
                command.finish(NOT_RUN_EXIT_CODE)
                command.release()
            self.queue.clear()
            self.cond.notify_all()

    def _release_if_done(self, command: Command) -> None:
        if command.exit_code is not None and command.out_fd is None and command.err_fd is None:
            command.release()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _drain_wake(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
