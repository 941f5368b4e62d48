"""The sessions of one agent, by id, and where their logs live.

Logs go under `<run directory>/sessions`, the directory of the agent's socket: `/run/corral` in a
sandbox, which the runner bind-mounts from the host. It exists and is writable in every image (even
a read-only one), it is outside the user's files (a `rm -rf /tmp/*` cannot break a running
session), and it stays readable from the host after the sandbox stops. Reads still go through the
agent, so the runner never opens files a sandbox could have swapped for symlinks.
"""
from __future__ import annotations

import os
import shutil
import threading

from .context import AgentContext
from .errors import BAD_REQUEST, EXEC_FAILED, AgentError
from .sessions_commands import Command
from .sessions_shell import Session

SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
SESSION_EXISTS = "SESSION_EXISTS"
COMMAND_NOT_FOUND = "COMMAND_NOT_FOUND"
MAX_SESSION_ID_CHARS = 1024


class Sessions:
    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._serial = 0
        shutil.rmtree(root, ignore_errors=True)  # left by an agent of an earlier start: its shells are gone
        os.makedirs(root, mode=0o700, exist_ok=True)

    def create(self, session_id: str, context: AgentContext) -> Session:
        if context.shell is None:
            raise AgentError(EXEC_FAILED, "no shell for a session: none of zsh, bash, sh is on PATH")
        with self._lock:
            if session_id in self._sessions:
                raise AgentError(SESSION_EXISTS, "session %s already exists" % (session_id,))
            self._serial += 1
            directory = os.path.join(self.root, "s%d" % (self._serial,))
            # Reserved while the shell starts (outside the lock): a second create sees the conflict.
            self._sessions[session_id] = None  # type: ignore[assignment]
        try:
            session = Session(session_id, directory, context.shell, context.environment(), context.workdir,
                              context.groups)
        except BaseException:
            with self._lock:
                del self._sessions[session_id]
            raise
        with self._lock:
            self._sessions[session_id] = session
        return session

    def get(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise AgentError(SESSION_NOT_FOUND, "session %s not found" % (session_id,))
        return session

    def command(self, session_id: str, command_id: object) -> tuple[Session, Command]:
        session = self.get(session_id)
        command = session.commands.get(command_id) if isinstance(command_id, str) else None
        if command is None:
            raise AgentError(COMMAND_NOT_FOUND, "command %s not found in session %s" % (command_id, session_id))
        return session, command

    def delete(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                del self._sessions[session_id]
        if session is None:
            raise AgentError(SESSION_NOT_FOUND, "session %s not found" % (session_id,))
        session.close()

    def all(self) -> list[Session]:
        with self._lock:
            return [s for s in self._sessions.values() if s is not None]

    def busy(self) -> int:
        """Sessions running (or about to run) a command: activity that keeps the sandbox up."""
        return sum(1 for session in self.all() if session.running is not None or session.queue)


def session_id_of(message: dict) -> str:
    session_id = message.get("sessionId")
    if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
        raise AgentError(BAD_REQUEST, "'sessionId' must be a non-empty string of at most %d characters"
                         % (MAX_SESSION_ID_CHARS,))
    return session_id


def sessions_of(context: AgentContext, connection) -> Sessions:  # type: ignore[no-untyped-def]
    """The agent's sessions, made on first use under the directory of the agent's socket."""

    def make() -> Sessions:
        try:
            run_dir = os.path.dirname(connection.sock.getsockname()) or None
        except (OSError, TypeError):
            run_dir = None
        if not run_dir:
            import tempfile

            run_dir = tempfile.mkdtemp(prefix="corral-agent-")
        return Sessions(os.path.join(run_dir, "sessions"))

    return context.area("sessions", make)
