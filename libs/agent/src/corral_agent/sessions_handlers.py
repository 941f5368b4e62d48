"""The handlers of the session ops (see sessions_shell for how a session runs its commands).

    session_create  {sessionId}                               -> result
    session_list    {}                                         -> session, command... frames, result
    session_get     {sessionId}                                -> session, command... frames, result
    session_delete  {sessionId}                                -> result (its process group is killed)
    session_exec    {sessionId, command, async?, suppressInputEcho?}
                    async: result {cmdId} at once; sync: result {cmdId, exitCode, logSize, log?} at the end
    session_command {sessionId, commandId}                     -> result {id, command, exitCode}
    session_logs    {sessionId, commandId, follow?, limit?}    -> log {size}, output..., result {exitCode, size}
    session_input   {sessionId, commandId, data}               -> result

A log is the marked byte stream of sessions_log, sent as `output` frames. Without `follow` it is the
log as it is now (at most `limit` bytes); with `follow` it streams as it grows and ends once the
command has ended, at the size the log had then.
"""
from __future__ import annotations

import binascii
import os
import select
import socket

from .errors import BAD_REQUEST, AgentError
from .framing import encode_output_frame
from .sessions_commands import NOT_RUN_EXIT_CODE, Command, encode_text
from .sessions_log import STDOUT_MARK, read_all, read_range
from .sessions_registry import session_id_of, sessions_of
from .sessions_shell import SESSION_ENDED, Session

COMMAND_ALREADY_COMPLETED = "COMMAND_ALREADY_COMPLETED"
INLINE_LOG_BYTES = 256 * 1024  # a sync exec's result carries a log up to this size itself
_INPUT_WAIT_SECONDS = 0.5


def create_session(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    session_id = session_id_of(message)
    sessions_of(context, connection).create(session_id, context)
    connection.send({"type": "result", "sessionId": session_id})


def list_sessions(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    for session in sessions_of(context, connection).all():
        _send_session(connection, session)
    connection.send({"type": "result"})


def get_session(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    _send_session(connection, sessions_of(context, connection).get(session_id_of(message)))
    connection.send({"type": "result"})


def delete_session(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    sessions_of(context, connection).delete(session_id_of(message))
    connection.send({"type": "result"})


def execute(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    session = sessions_of(context, connection).get(session_id_of(message))
    text = message.get("command")
    if not isinstance(text, str):
        raise AgentError(BAD_REQUEST, "'command' must be a string")
    command = session.submit(text, echo_input=not message.get("suppressInputEcho"))
    if message.get("async"):
        connection.send({"type": "result", "cmdId": command.id})
        return
    if not session.wait(command, lambda: client_gone(connection.sock)):
        return  # nobody waits for the answer any more; the command runs on
    if command.exit_code == NOT_RUN_EXIT_CODE:
        raise AgentError(SESSION_ENDED, "session %s ended before the command could run" % (session.id,))
    result = {"type": "result", "cmdId": command.id, "exitCode": command.exit_code, "logSize": command.end_offset}
    if command.end_offset <= INLINE_LOG_BYTES:
        result["log"] = binascii.b2a_base64(read_all(command.log.path, command.end_offset), newline=False).decode()
    connection.send(result)


def get_command(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    _, command = sessions_of(context, connection).command(session_id_of(message), message.get("commandId"))
    connection.send({"type": "result", **command.describe()})


def command_logs(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    session, command = sessions_of(context, connection).command(session_id_of(message), message.get("commandId"))

    def send(chunk: bytes) -> None:
        connection.send_encoded(encode_output_frame(chunk))

    if not message.get("follow"):
        size = command.log.size
        limit = message.get("limit")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise AgentError(BAD_REQUEST, "'limit' must be a number of bytes")
            size = min(size, limit)
        connection.send({"type": "log", "size": size})
        read_range(command.log.path, 0, size, send)
        connection.send({"type": "result", "exitCode": command.exit_code, "size": size})
        return
    connection.send({"type": "log", "size": command.log.size})
    offset = 0
    while True:
        with session.cond:
            while True:
                done = command.exit_code is not None
                end = command.end_offset if done else command.log.size
                if done or offset < end:
                    break
                session.cond.wait(1.0)
                if client_gone(connection.sock):
                    return
        offset = read_range(command.log.path, offset, end, send)
        if done:
            connection.send({"type": "result", "exitCode": command.exit_code, "size": offset})
            return


def send_input(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    session, command = sessions_of(context, connection).command(session_id_of(message), message.get("commandId"))
    data = message.get("data")
    if not isinstance(data, str):
        raise AgentError(BAD_REQUEST, "'data' must be a string")
    raw = encode_text(data)
    with session.cond:
        _check_running(session, command)
        fd = os.dup(command.in_fd)  # type: ignore[arg-type]
    try:
        if command.echo_input:
            command.log.append(STDOUT_MARK, raw)
            with session.cond:
                session.cond.notify_all()
        view = memoryview(raw)
        while view:
            try:
                view = view[os.write(fd, view):]
                continue
            except BlockingIOError:
                pass
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll(_INPUT_WAIT_SECONDS * 1000)
            with session.cond:
                _check_running(session, command)
            if client_gone(connection.sock):
                return
    finally:
        os.close(fd)
    connection.send({"type": "result", "written": len(raw)})


def _check_running(session: Session, command: Command) -> None:
    if command.exit_code == NOT_RUN_EXIT_CODE or (command.exit_code is None and session.closing):
        raise AgentError(SESSION_ENDED, "session %s has ended" % (session.id,))
    if command.exit_code is not None or command.in_fd is None:
        raise AgentError(COMMAND_ALREADY_COMPLETED, "command %s has already completed" % (command.id,))


def _send_session(connection, session: Session) -> None:  # type: ignore[no-untyped-def]
    with session.cond:
        commands = [command.describe() for command in session.commands.values()]
        header = {"type": "session", "sessionId": session.id, "ended": session.ended, "exitCode": session.exit_code}
    connection.send(header)
    for command in commands:
        connection.send({"type": "command", "sessionId": session.id, **command})


def client_gone(sock: socket.socket) -> bool:
    """True once the client has closed its end (it sends nothing after its request)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    events = poller.poll(0)
    if not events:
        return False
    if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
        return True
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


HANDLERS = {
    "session_create": create_session,
    "session_list": list_sessions,
    "session_get": get_session,
    "session_delete": delete_session,
    "session_exec": execute,
    "session_command": get_command,
    "session_logs": command_logs,
    "session_input": send_input,
}
