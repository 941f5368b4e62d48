"""Agent ops of the code interpreter; the handlers (interpreter_handlers) load on first use, which
keeps the idle agent small."""
from __future__ import annotations

OPS = ("interpreter_create", "interpreter_list", "interpreter_delete", "interpreter_run")


def _dispatch(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    from .interpreter_handlers import HANDLERS as handlers

    handlers[message["op"]](message, context, connection)


HANDLERS = dict.fromkeys(OPS, _dispatch)
