"""One exec: start the process in its own session, then let the pump stream it to the client."""
from __future__ import annotations

import os
import socket
import subprocess

from .errors import BAD_REQUEST, EXEC_FAILED, AgentError
from .exec_request import ExecRequest
from .process_groups import ProcessGroups, prefer_child_for_oom
from .pump import Pump, close_fds


def run_exec(request: ExecRequest, *, shell: str | None, sock: socket.socket, groups: ProcessGroups) -> None:
    """Run the request, streaming output frames and the exit frame to `sock`.

    Raises AgentError (before anything was sent) if the process cannot be started. If the client
    hangs up before the end, the process group is killed and nothing more is sent.
    """
    proc, out_fd, in_fd = spawn(request, shell)
    groups.add(proc.pid)
    pump = Pump(proc, out_fd, in_fd, request, sock)
    try:
        encoded_exit = pump.run()
    finally:
        pump.close()
        groups.discard(proc.pid)
    if encoded_exit is not None:
        sock.setblocking(True)
        pump.flush_blocking()
        sock.sendall(encoded_exit)


def spawn(request: ExecRequest, shell: str | None) -> tuple[subprocess.Popen, int, int | None]:
    """Start the process in a new session; returns it, the output pipe and its stdin pipe (or None)."""
    if request.argv is not None:
        argv = request.argv
    elif shell is None:
        raise AgentError(EXEC_FAILED, "no shell to run the command: none of zsh, bash, sh is on PATH")
    else:
        argv = [shell]
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe() if request.stdin is not None else (None, None)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=in_r if in_r is not None else subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            cwd=request.cwd,
            env=request.env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        close_fds(out_r, in_w)
        raise AgentError(EXEC_FAILED, "cannot start %s: %s" % (argv[0], error.strerror or error)) from None
    except (ValueError, TypeError) as error:
        close_fds(out_r, in_w)
        raise AgentError(BAD_REQUEST, "cannot start %s: %s" % (argv[0], error)) from None
    finally:
        close_fds(out_w, in_r)
    prefer_child_for_oom(proc.pid)
    if in_w is not None:
        os.set_blocking(in_w, False)
    return proc, out_r, in_w

