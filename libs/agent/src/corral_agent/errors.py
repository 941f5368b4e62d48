"""The failures the agent reports to its client as one `{"type": "error"}` frame."""
from __future__ import annotations

BAD_REQUEST = "BAD_REQUEST"  # not a frame, not JSON, wrong or missing fields
UNKNOWN_OP = "UNKNOWN_OP"  # a well-formed request for an operation this agent lacks
CWD_NOT_FOUND = "CWD_NOT_FOUND"  # exec's working directory is missing or not a directory
EXEC_FAILED = "EXEC_FAILED"  # the process could not be started (no such program, no shell, fork)
PORT_CLOSED = "PORT_CLOSED"  # `tunnel`: nothing listens on the port on the sandbox's loopback
UNAVAILABLE = "UNAVAILABLE"  # the agent cannot take the connection now (e.g. no thread left)
INTERNAL = "INTERNAL"  # a bug in the agent; details go to its stderr


class AgentError(Exception):
    """A failure with a protocol error code, turned into an error frame by the server."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def frame(self) -> dict:
        return {"type": "error", "code": self.code, "message": self.message}
