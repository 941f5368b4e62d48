"""The agent's PTYs by id, and the validation of PTY requests."""
from __future__ import annotations

import threading

from .errors import BAD_REQUEST, AgentError
from .pty_session import PtySession

PTY_NOT_FOUND = "PTY_NOT_FOUND"
PTY_EXISTS = "PTY_EXISTS"
MAX_SIZE = 1000  # columns and rows, as the SDK's PtySize
MAX_ENDED = 16  # ended PTYs kept for their exit status and scrollback; the oldest go first
MAX_ID_CHARS = 256


class PtyTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict = {}

    def add(self, session: PtySession) -> None:
        """Reserve the id (an ended PTY of that id is replaced); PTY_EXISTS while one is live."""
        with self._lock:
            existing = self._sessions.get(session.id)
            if existing is not None and existing.exit is None:
                raise AgentError(PTY_EXISTS, "PTY session %s already exists" % (session.id,))
            self._sessions[session.id] = session
            ended = [s for s in self._sessions.values() if s.exit is not None]
            for old in sorted(ended, key=lambda s: s.created_at)[: max(0, len(ended) - MAX_ENDED)]:
                del self._sessions[old.id]

    def get(self, session_id: object) -> PtySession:
        with self._lock:
            session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            raise AgentError(PTY_NOT_FOUND, "PTY session %s not found" % (session_id,))
        return session

    def remove(self, session: PtySession) -> None:
        with self._lock:
            if self._sessions.get(session.id) is session:
                del self._sessions[session.id]

    def busy(self) -> int:
        """Open terminals someone is attached to: activity for the lifecycle timers (a detached,
        forgotten shell does not keep its sandbox awake)."""
        with self._lock:
            sessions = list(self._sessions.values())
        return sum(1 for s in sessions if s.active and s.loop is not None and (s.loop.clients or s.loop.pending))

    def all(self) -> list:
        with self._lock:
            sessions = list(self._sessions.values())
        return sorted(sessions, key=lambda s: s.created_at)


def session_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise AgentError(BAD_REQUEST, "'id' must be a non-empty string of at most %d characters" % (MAX_ID_CHARS,))
    if "/" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise AgentError(BAD_REQUEST, "'id' must not hold '/' or control characters")
    return value


def dimension(message: dict, name: str, default: int | None) -> int:
    value = message.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
        raise AgentError(BAD_REQUEST, "'%s' must be an integer from 1 to %d" % (name, MAX_SIZE))
    return value


def variables(value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AgentError(BAD_REQUEST, "'envs' must be an object of strings")
    for name, text in value.items():
        if not isinstance(text, str) or not name or "=" in name or "\0" in name or "\0" in text:
            raise AgentError(BAD_REQUEST, "invalid environment variable %r" % (name,))
    return dict(value)
