"""The `exec` request: validated fields, the working directory resolved against the workdir."""
from __future__ import annotations

import binascii
import math
import os

from .errors import BAD_REQUEST, CWD_NOT_FOUND, AgentError


class ExecRequest:
    """What to run and how. Exactly one of `argv` and `command` is set.

    `stdin` is the bytes fed to the process: the shell text for `command`, the decoded request
    `stdin` for `argv`, or None (the process gets /dev/null).
    """

    __slots__ = ("argv", "command", "cwd", "env", "timeout", "stdin")

    def __init__(
        self,
        argv: list[str] | None,
        command: str | None,
        cwd: str,
        env: dict[str, str],
        timeout: float | None,
        stdin: bytes | None,
    ) -> None:
        self.argv = argv
        self.command = command
        self.cwd = cwd
        self.env = env
        self.timeout = timeout
        self.stdin = stdin


def parse_exec_request(message: dict, *, workdir: str, base_env: dict[str, str]) -> ExecRequest:
    argv = _argv(message.get("argv"))
    command = message.get("command")
    if command is not None and not isinstance(command, str):
        raise AgentError(BAD_REQUEST, "'command' must be a string")
    if (argv is None) == (command is None):
        raise AgentError(BAD_REQUEST, "exactly one of 'argv' and 'command' must be given")
    stdin = _stdin(message.get("stdin"))
    if command is not None:
        if stdin is not None:
            raise AgentError(BAD_REQUEST, "'stdin' is only accepted with 'argv' (a command is the shell's stdin)")
        stdin = _script(command)
    return ExecRequest(
        argv=argv,
        command=command,
        cwd=resolve_cwd(message.get("cwd"), workdir),
        env=_env(message.get("env"), base_env),
        timeout=_timeout(message.get("timeout")),
        stdin=stdin,
    )


def resolve_cwd(cwd: object, workdir: str) -> str:
    """None -> the workdir; relative -> under the workdir; must be an existing directory."""
    if cwd is None:
        cwd = workdir
    if not isinstance(cwd, str) or not cwd or "\0" in cwd:
        raise AgentError(BAD_REQUEST, "'cwd' must be a non-empty string")
    path = os.path.normpath(os.path.join(workdir, cwd))
    if not os.path.isdir(path):
        reason = "is not a directory" if os.path.exists(path) else "does not exist"
        raise AgentError(CWD_NOT_FOUND, "working directory %s %s" % (path, reason))
    return path


def _argv(argv: object) -> list[str] | None:
    if argv is None:
        return None
    if not isinstance(argv, list) or not argv:
        raise AgentError(BAD_REQUEST, "'argv' must be a non-empty list of strings")
    for arg in argv:
        if not isinstance(arg, str) or "\0" in arg:
            raise AgentError(BAD_REQUEST, "'argv' must hold strings without NUL characters")
    if not argv[0]:
        raise AgentError(BAD_REQUEST, "'argv[0]' must name a program")
    return argv


def _env(overrides: object, base_env: dict[str, str]) -> dict[str, str]:
    env = dict(base_env)
    if overrides is None:
        return env
    if not isinstance(overrides, dict):
        raise AgentError(BAD_REQUEST, "'env' must be an object of strings")
    for name, value in overrides.items():
        if not isinstance(value, str) or not name or "=" in name or "\0" in name or "\0" in value:
            raise AgentError(BAD_REQUEST, "invalid environment variable %r" % (name,))
        env[name] = value
    return env


def _timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise AgentError(BAD_REQUEST, "'timeout' must be a number of seconds")
    if not math.isfinite(timeout) or timeout < 0:
        raise AgentError(BAD_REQUEST, "'timeout' must be a finite number >= 0")
    return float(timeout) if timeout > 0 else None


def _script(command: str) -> bytes:
    text = command if command.endswith("\n") else command + "\n"
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise AgentError(BAD_REQUEST, "'command' holds characters that are not valid UTF-8") from None


def _stdin(data: object) -> bytes | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise AgentError(BAD_REQUEST, "'stdin' must be a base64 string")
    encoded = "".join(data.split()).encode("ascii", "replace")
    try:
        decoded = binascii.a2b_base64(encoded)
    except binascii.Error:
        decoded = None
    # a2b_base64 skips characters outside the alphabet before 3.11's strict_mode: re-encode to be sure
    if decoded is None or binascii.b2a_base64(decoded, newline=False) != encoded:
        raise AgentError(BAD_REQUEST, "'stdin' is not valid base64")
    return decoded
