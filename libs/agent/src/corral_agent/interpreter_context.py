"""One code-interpreter context: a long-lived python3 worker (interpreter_repl) and its runs.

A run writes the request line to the worker, then one poll loop streams the worker's stdout and
stderr to the client as text frames until the worker's event line says the code has ended (its
output is drained first, so nothing is reordered). At the deadline, or when the client hangs up,
the worker's process group gets SIGINT (a KeyboardInterrupt in the code, the globals survive); if
the code does not stop within `INTERRUPT_GRACE_SECONDS` the group is killed and the next run starts a
fresh worker. One run at a time per context; another waits for its turn.
"""
from __future__ import annotations

import codecs
import json
import os
import select
import signal
import subprocess
import threading
import time

from .errors import EXEC_FAILED, AgentError
from .process_groups import ProcessGroups, kill_group, prefer_for_oom

INTERRUPT_GRACE_SECONDS = 2.0
_READ_BYTES = 64 * 1024
_DRAIN_LIMIT_BYTES = 2 * 1024 * 1024
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def repl_source() -> bytes:
    """The worker's source, read from this package (a directory or the agent's zipapp)."""
    loader = __spec__.loader  # type: ignore[name-defined]
    return loader.get_data(os.path.join(os.path.dirname(__file__), "interpreter_repl.py"))  # type: ignore[union-attr]


class Interpreter:
    def __init__(self, context_id: str, cwd: str, env: dict, python: str, source: bytes,
                 groups: ProcessGroups) -> None:
        self.id = context_id
        self.cwd = cwd
        self.created_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (time.time() % 1 * 1000)
        self.deleted = False
        self._env = env
        self._python = python
        self._source = source
        self._groups = groups
        self._lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self._fds: dict[str, int] = {}

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def describe(self) -> dict:
        active = not self.deleted and self.proc is not None and self.proc.poll() is None
        return {"id": self.id, "language": "python", "cwd": self.cwd, "createdAt": self.created_at, "active": active}

    def start(self) -> None:
        pipes = {name: os.pipe() for name in ("request", "event", "stdout", "stderr")}
        child = [pipes["request"][0], pipes["event"][1], pipes["stdout"][1], pipes["stderr"][1]]
        try:
            self.proc = subprocess.Popen(
                [self._python, "-c", self._source, str(pipes["request"][0]), str(pipes["event"][1])],
                stdin=subprocess.DEVNULL, stdout=pipes["stdout"][1], stderr=pipes["stderr"][1], cwd=self.cwd,
                env=self._env, start_new_session=True, close_fds=True, preexec_fn=prefer_for_oom,
                pass_fds=(pipes["request"][0], pipes["event"][1]))
        except OSError as error:
            for read_end, write_end in pipes.values():
                _close(read_end, write_end)
            raise AgentError(EXEC_FAILED, "cannot start %s: %s" % (self._python, error.strerror or error)) from None
        finally:
            _close(*child)
        self._fds = {"request": pipes["request"][1], "event": pipes["event"][0], "stdout": pipes["stdout"][0],
                     "stderr": pipes["stderr"][0]}
        for name in ("event", "stdout", "stderr"):
            os.set_blocking(self._fds[name], False)
        self._groups.add(self.proc.pid, job=False)  # busy only during a run (see Interpreters.busy)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            kill_group(proc.pid)
            proc.wait()
            self._groups.discard(proc.pid)
        _close(*self._fds.values())
        self._fds = {}

    def run(self, code: str, envs: dict, timeout: float | None, emit, sock) -> str:  # type: ignore[no-untyped-def]
        """Run `code`, passing output and error frames to `emit`; the final status:
        "completed", "timeout" or "interrupted" (the client hung up)."""
        deadline = time.monotonic() + timeout if timeout else None
        while not self._lock.acquire(timeout=0.5):
            if _hung_up(sock):
                return "interrupted"
            if deadline is not None and time.monotonic() >= deadline:
                return "timeout"
        try:
            if self.deleted:
                raise AgentError("CONTEXT_NOT_FOUND", "context %s was deleted" % (self.id,))
            if self.proc is None or self.proc.poll() is not None:
                self.stop()
                self.start()
            return _Run(self, emit, sock, deadline).execute(code, envs)
        finally:
            self._lock.release()


class _Run:
    """The poll loop of one run (see the module docstring)."""

    def __init__(self, interpreter: Interpreter, emit, sock,  # type: ignore[no-untyped-def]
                 deadline: float | None) -> None:
        self.interpreter = interpreter
        self.fds = interpreter._fds
        self.emit = emit
        self.sock = sock
        self.deadline = deadline
        self.decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}
        self.events = b""
        self.client_gone = False
        self.reason: str | None = None  # why the code was interrupted
        self.kill_at: float | None = None
        self.poller = select.poll()

    def execute(self, code: str, envs: dict) -> str:
        request = (json.dumps({"code": code, "envs": envs}) + "\n").encode("utf-8", "surrogateescape")
        try:
            _write_all(self.fds["request"], request)
        except OSError:
            return self._died()
        poller = self.poller
        for name in ("stdout", "stderr", "event"):
            poller.register(self.fds[name], select.POLLIN)
        poller.register(self.sock.fileno(), select.POLLIN)
        names = {fd: name for name, fd in self.fds.items()}
        while True:
            for fd, events in poller.poll(self._wait_millis()):
                name = names.get(fd)
                if name in ("stdout", "stderr"):
                    self._read(name)
                elif name == "event":
                    event = self._read_event()
                    if event is not None:
                        return self._finish(event)
                elif fd == self.sock.fileno() and (events & _GONE or _hung_up(self.sock)):
                    poller.unregister(fd)
                    self.client_gone = True
                    self._interrupt("interrupted")
            now = time.monotonic()
            if self.kill_at is not None and now >= self.kill_at:
                self.interpreter.stop()
                return self.reason or "interrupted"
            if self.reason is None and self.deadline is not None and now >= self.deadline:
                self._interrupt("timeout")

    def _wait_millis(self) -> int:
        until = self.kill_at if self.kill_at is not None else self.deadline
        if until is None:
            return -1
        return max(0, int((until - time.monotonic()) * 1000) + 1)

    def _interrupt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.kill_at = time.monotonic() + INTERRUPT_GRACE_SECONDS
            proc = self.interpreter.proc
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass

    def _read(self, name: str, budget: int = _READ_BYTES) -> int:
        """Pass on up to `budget` bytes of the stream; returns how many were read (0: none now)."""
        try:
            chunk = os.read(self.fds[name], budget)
        except (BlockingIOError, InterruptedError):
            return 0
        text = self.decoders[name].decode(chunk, final=not chunk)
        if text:
            self._emit({"type": name, "text": text})
        if not chunk:  # the code closed it: nothing more comes from there in this worker
            try:
                self.poller.unregister(self.fds[name])
            except KeyError:
                pass
        return len(chunk)

    def _read_event(self) -> dict | None:
        try:
            chunk = os.read(self.fds["event"], _READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return None
        if not chunk:  # the worker is gone
            return {"type": "died"}
        self.events += chunk
        if b"\n" not in self.events:
            return None
        line, _, self.events = self.events.partition(b"\n")
        try:
            return json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            return {"type": "died"}

    def _finish(self, event: dict) -> str:
        for name in ("stdout", "stderr"):
            budget = _DRAIN_LIMIT_BYTES
            while budget > 0:
                count = self._read(name)
                if not count:
                    break
                budget -= count
            tail = self.decoders[name].decode(b"", final=True)  # an incomplete character at the very end
            if tail:
                self._emit({"type": name, "text": tail})
        if event.get("type") == "died":
            return self._died()
        if event.get("type") == "error" and self.reason is None:
            self._emit({"type": "exception", "name": str(event.get("name", "")), "value": str(event.get("value", "")),
                        "traceback": str(event.get("traceback", ""))})
        return self.reason or "completed"

    def _died(self) -> str:
        proc = self.interpreter.proc
        code = proc.wait() if proc is not None else None
        self.interpreter.stop()
        if self.reason is None:
            self._emit({"type": "exception", "name": "InterpreterExited",
                        "value": "the interpreter process exited (status %s); the context starts afresh on its next "
                                 "run" % (code,), "traceback": ""})
        return self.reason or "completed"

    def _emit(self, frame: dict) -> None:
        if self.client_gone:
            return
        try:
            self.emit(frame)
        except OSError:
            self.client_gone = True
            self._interrupt("interrupted")


def _hung_up(sock) -> bool:  # type: ignore[no-untyped-def]
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    events = poller.poll(0)
    if not events:
        return False
    if events[0][1] & _GONE:
        return True
    try:
        import socket

        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
