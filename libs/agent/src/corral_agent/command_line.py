"""`python3 corral-agent.pyz --socket PATH --workdir DIR`: parse options, run the server.

Recommended launch: `python3 -I -S /opt/corral/corral-agent.pyz ...`. The agent needs only the
standard library, so skipping site (-S) saves whatever the image's site-packages .pth files import
(4 MB of RSS on some images), and -I keeps PYTHONPATH and friends of the sandbox out of the agent.
Children of execs get the agent's environment unchanged either way.
"""
from __future__ import annotations

import os
import signal
import sys

USAGE = """usage: corral-agent --socket PATH [--workdir DIR] [--socket-mode OCTAL]
       corral-agent --version

  --socket PATH        unix socket to listen on (parent directory created, stale socket replaced)
  --workdir DIR        default and base working directory of execs (default: $HOME, else the cwd)
  --socket-mode OCTAL  permissions of the socket file (default: 660)
"""


class UsageError(Exception):
    pass


class _Stop(BaseException):
    """Raised in the main thread by SIGTERM / SIGINT to leave the accept loop."""


def parse_args(argv: list[str]) -> dict[str, str]:
    """A deliberately tiny parser: argparse alone would cost the agent half a megabyte of RSS."""
    options: dict[str, str] = {}
    valued = ("--socket", "--workdir", "--socket-mode")
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, has_value, value = arg.partition("=")
        if name in valued:
            if not has_value:
                if not args:
                    raise UsageError("%s needs a value" % (name,))
                value = args.pop(0)
            options[name[2:]] = value
        elif arg in ("--help", "-h"):
            options["help"] = "1"
        elif arg == "--version":
            options["version"] = "1"
        else:
            raise UsageError("unexpected argument %r" % (arg,))
    return options


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv)
        mode = int(options.get("socket-mode", "660"), 8)
        if "help" not in options and "version" not in options and "socket" not in options:
            raise UsageError("--socket is required")
    except (UsageError, ValueError) as error:
        sys.stderr.write("corral-agent: %s\n%s" % (error, USAGE))
        return 2
    if "help" in options:
        sys.stdout.write(USAGE)
        return 0
    from .version import running_version

    if "version" in options:
        sys.stdout.write(running_version() + "\n")
        return 0
    return _serve(options["socket"], options.get("workdir"), mode, running_version())


def _serve(socket_path: str, workdir: str | None, mode: int, version: str) -> int:
    from .context import build_context
    from .server import AgentServer, StartupError, log

    workdir = os.path.abspath(workdir or os.environ.get("HOME") or os.getcwd())
    try:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        server = AgentServer(build_context(workdir, version), socket_path, mode)
        server.listen()
    except (OSError, StartupError) as error:
        log("cannot start: %s" % (error,))
        return 1
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log("version %s listening on %s (workdir %s)" % (version, server.socket_path, workdir))
    try:
        server.serve_forever()
    except _Stop:
        pass
    finally:
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _stop(signum: int, frame: object) -> None:
    raise _Stop()
