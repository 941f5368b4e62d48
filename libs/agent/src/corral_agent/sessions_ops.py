"""Agent ops of process sessions; the handlers (sessions_handlers) load on first use, which keeps
the idle agent small."""
from __future__ import annotations

OPS = ("session_create", "session_list", "session_get", "session_delete", "session_exec", "session_command",
       "session_logs", "session_input")


def _dispatch(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    from .sessions_handlers import HANDLERS as handlers

    handlers[message["op"]](message, context, connection)


HANDLERS = dict.fromkeys(OPS, _dispatch)
