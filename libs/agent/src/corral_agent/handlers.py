"""The request handlers, looked up by the request's `op`."""
from __future__ import annotations

import os

from . import exec_stream, files_ops, interpreter_ops, pty_ops, sessions_ops, tunnel_ops
from .connection import Connection
from .context import AgentContext
from .errors import BAD_REQUEST, AgentError
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
    request = parse_exec_request(message, workdir=context.workdir, base_env=context.environment())
    run_exec(request, shell=context.shell, sock=connection.sock, groups=context.groups)


def update_env(message: dict, context: AgentContext, connection: Connection) -> None:
    """`{"op": "env", "set": {name: value}, "unset": [name]}`: processes started afterwards see the change."""
    changes = message.get("set") or {}
    removals = message.get("unset") or []
    if not isinstance(changes, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k
                                                and "\0" not in k + v for k, v in changes.items()):
        raise AgentError(BAD_REQUEST, "set must map variable names to string values")
    if not isinstance(removals, list) or not all(isinstance(k, str) for k in removals):
        raise AgentError(BAD_REQUEST, "unset must be a list of variable names")
    with context.env_lock:
        context.env.update(changes)
        for name in removals:
            context.env.pop(name, None)
        size = len(context.env)
    connection.send({"type": "result", "variables": size})


def activity(message: dict, context: AgentContext, connection: Connection) -> None:
    """How much is running on behalf of clients: execs, plus what each area counts as busy (a running
    session command, an open terminal, an open tunnel). The runner reports a busy sandbox as active, so lifecycle
    timers never stop a sandbox in the middle of a job."""
    running = context.groups.count()
    with context.areas_lock:
        states = list(context.areas.values())
    for state in states:
        busy = getattr(state, "busy", None)
        if busy is not None:
            running += int(busy())
    connection.send({"type": "result", "running": running})


HANDLERS = {
    "ping": ping,
    "activity": activity,
    "exec": execute,
    "env": update_env,
}
# One module per toolbox area adds its ops.
for _area in (files_ops, sessions_ops, pty_ops, interpreter_ops, exec_stream, tunnel_ops):
    HANDLERS.update(_area.HANDLERS)
