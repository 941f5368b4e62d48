"""`exec_stream`: one process whose stdin, stdout and stderr are streamed both ways (what SSH needs).

    {"op": "exec_stream", "command"?: str, "argv"?: [str], "program"?: "sftp-server", "cwd"?, "env"?}

- `command` runs under the sandbox shell (`<shell> -c command`), `argv` as given, `program: sftp-server`
  is the agent's own SFTP server (sftp_server.py) in a process of its own; with none of them, the shell
  reads its commands from stdin (an SSH session without a terminal).
- The agent answers `{"type": "started", "pid": N}` (or an error frame), then both sides send mux frames
  (framing.py): the client stdin bytes, EOF and signal names; the agent stdout and stderr bytes apart,
  then the exit (`{"exitCode", "signal"}`) once the process has exited and its output is drained.
- The process leads its own session; a client that hangs up before the exit gets its whole process
  group killed. A signal goes to the whole group.
"""
from __future__ import annotations

import os
import subprocess
import sys

from .errors import BAD_REQUEST, EXEC_FAILED, AgentError
from .exec_request import _argv, _env, resolve_cwd
from .process_groups import prefer_child_for_oom
from .pump import close_fds

PROGRAMS = ("sftp-server",)
LINGER_SECONDS = 5.0
"""After the exit frame, how long the client may take to close its end (its late frames are dropped)."""


def agent_root() -> str:
    """What to put on sys.path to import this agent: the zipapp, or the source tree."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def program_argv(name: str) -> list:
    if name == "sftp-server":
        code = ("import sys; sys.path.insert(0, %r); from corral_agent.sftp_server import main; sys.exit(main())"
                % (agent_root(),))
        return [sys.executable, "-I", "-S", "-c", code]
    raise AgentError(BAD_REQUEST, "unknown program %r (known: %s)" % (name, ", ".join(PROGRAMS)))


def stream_argv(message: dict, shell: str | None) -> list:
    argv = _argv(message.get("argv"))
    command = message.get("command")
    program = message.get("program")
    given = [name for name, value in (("argv", argv), ("command", command), ("program", program)) if value is not None]
    if len(given) > 1:
        raise AgentError(BAD_REQUEST, "give at most one of 'argv', 'command' and 'program'")
    if argv is not None:
        return argv
    if program is not None:
        if not isinstance(program, str):
            raise AgentError(BAD_REQUEST, "'program' must be a string")
        return program_argv(program)
    if command is not None and not isinstance(command, str):
        raise AgentError(BAD_REQUEST, "'command' must be a string")
    if shell is None:
        raise AgentError(EXEC_FAILED, "no shell to run the command: none of zsh, bash, sh is on PATH")
    if command is not None and "\0" in command:
        raise AgentError(BAD_REQUEST, "'command' must not hold NUL characters")
    return [shell, "-c", command] if command is not None else [shell]


def exec_stream(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    from .stream_pump import StreamPump

    argv = stream_argv(message, context.shell)
    cwd = resolve_cwd(message.get("cwd"), context.workdir)
    env = _env(message.get("env"), context.environment())
    pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr
    (in_r, in_w), (out_r, out_w), (err_r, err_w) = pipes
    try:
        proc = subprocess.Popen(argv, stdin=in_r, stdout=out_w, stderr=err_w, cwd=cwd, env=env,
                                start_new_session=True, close_fds=True)
    except OSError as error:
        close_fds(in_w, out_r, err_r)
        raise AgentError(EXEC_FAILED, "cannot start %s: %s" % (argv[0], error.strerror or error)) from None
    except (ValueError, TypeError) as error:
        close_fds(in_w, out_r, err_r)
        raise AgentError(BAD_REQUEST, "cannot start %s: %s" % (argv[0], error)) from None
    finally:
        close_fds(in_r, out_w, err_w)
    prefer_child_for_oom(proc.pid)
    context.groups.add(proc.pid)
    pump = StreamPump(proc, in_w, out_r, err_r, connection.sock)
    try:
        connection.send({"type": "started", "pid": proc.pid})
        encoded_exit = pump.run()
    finally:
        pump.close()
        context.groups.discard(proc.pid)
    if encoded_exit is not None:
        connection.sock.setblocking(True)
        pump.flush_blocking()
        connection.sock.sendall(encoded_exit)
        connection.linger(LINGER_SECONDS)


HANDLERS: dict = {"exec_stream": exec_stream}
