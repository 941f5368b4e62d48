"""The request handlers, looked up by the request's `op`."""
from __future__ import annotations

import os

from .connection import Connection
from .context import AgentContext
from .exec_request import parse_exec_request
from .execution import run_exec


def ping(message: dict, context: AgentContext, connection: Connection) -> None:
    connection.send(
        {
            "type": "pong",
            "version": context.version,
            "pid": os.getpid(),
            "workdir": context.workdir,
            "home": context.home,
            "user": context.user,
        }
    )


def execute(message: dict, context: AgentContext, connection: Connection) -> None:
    request = parse_exec_request(message, workdir=context.workdir, base_env=dict(os.environ))
    run_exec(request, shell=context.shell, sock=connection.sock, groups=context.groups)


HANDLERS = {
    "ping": ping,
    "exec": execute,
}
