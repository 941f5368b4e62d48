"""Agent ops of the PTY area (see handlers.py). Each handler: (message, context, connection).

    pty_create {id, cwd?, envs?, cols?, rows?, lazyStart?, attach?, command?}
        -> {"type": "result", "session": info}; with `attach` the connection becomes a client (below);
        with `command` the PTY runs `<shell> -c command` instead of an interactive shell (`ssh -t host cmd`)
    pty_attach {id}          the connection becomes a client of the PTY (a lazy one is started)
    pty_info {id}            -> {"type": "result", "session": info}
    pty_list {}              -> {"type": "result", "sessions": [info]}
    pty_resize {id, cols, rows} -> {"type": "result", "session": info}
    pty_kill {id}            -> {"type": "result"}: its processes are killed and the id is free again

A client first gets `{"type": "attached", "session": info}`, then the recent output (up to 64 KiB)
and the live output as `{"type": "output", "data": base64}` frames, and at the end
`{"type": "exit", "exitCode": N, "signal": N | null}`. It sends keystrokes as
`{"type": "input", "data": base64}` frames and leaves by closing the connection; the PTY lives on.
`info` is the toolbox's PtySessionInfo: id, active, cols, rows, cwd, envs, createdAt, lazyStart.

The PTY modules are imported on first use: an agent that never opens a PTY does not load them.
"""
from __future__ import annotations

from .errors import BAD_REQUEST, AgentError
from .exec_request import resolve_cwd


def _table(context):  # type: ignore[no-untyped-def]
    from .pty_table import PtyTable

    return context.area("pty", PtyTable)


def pty_create(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    from .pty_session import PtySession
    from .pty_table import dimension, session_id, variables

    lazy_start = message.get("lazyStart", False)
    if not isinstance(lazy_start, bool):
        raise AgentError(BAD_REQUEST, "'lazyStart' must be a boolean")
    command = message.get("command")
    if command is not None and (not isinstance(command, str) or "\0" in command):
        raise AgentError(BAD_REQUEST, "'command' must be a string without NUL characters")
    session = PtySession(
        session_id(message.get("id")),
        cwd=resolve_cwd(message.get("cwd"), context.workdir),
        envs=variables(message.get("envs")),
        cols=dimension(message, "cols", 80),
        rows=dimension(message, "rows", 24),
        lazy_start=lazy_start,
        shell=context.shell,
        user=context.user,
        home=context.home,
        base_env=context.environment(),
        command=command,
    )
    table = _table(context)
    table.add(session)
    attach = message.get("attach") is True
    if attach or not lazy_start:
        try:
            session.start(context.groups)
        except BaseException:
            table.remove(session)
            raise
    if attach:
        session.attach(connection)
    else:
        connection.send({"type": "result", "session": session.info()})


def pty_attach(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    session = _table(context).get(message.get("id"))
    session.start(context.groups)  # a lazy PTY starts with its first client
    session.attach(connection)


def pty_info(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    connection.send({"type": "result", "session": _table(context).get(message.get("id")).info()})


def pty_list(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    connection.send({"type": "result", "sessions": [s.info() for s in _table(context).all()]})


def pty_resize(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    from .pty_table import dimension

    session = _table(context).get(message.get("id"))
    session.resize(dimension(message, "cols", None), dimension(message, "rows", None))
    connection.send({"type": "result", "session": session.info()})


def pty_kill(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    table = _table(context)
    session = table.get(message.get("id"))
    table.remove(session)
    session.kill()
    connection.send({"type": "result"})


HANDLERS: dict = {
    "pty_create": pty_create,
    "pty_attach": pty_attach,
    "pty_info": pty_info,
    "pty_list": pty_list,
    "pty_resize": pty_resize,
    "pty_kill": pty_kill,
}
