"""The worker of one code-interpreter context: a python3 process that keeps its globals between runs.

It is not imported by the agent: the agent reads this file's source and starts
`python3 -c <source> <request fd> <event fd>` (the sandbox's own python3, with its site-packages)
per context. Requests arrive as JSON lines `{"code", "envs"}` on the request fd. The code runs in the
namespace of a fresh `__main__` module, so definitions persist and pickling works; its output goes to
the process's real stdout and stderr (pipes the agent reads, so subprocesses stream too), line
buffered: each line goes out as it is printed, in one piece. After each
run, with stdout and stderr flushed first, one JSON line on the event fd says how it ended:
`{"type": "done"}`, `{"type": "interrupted"}` (SIGINT: the agent's timeout) or
`{"type": "error", "name", "value", "traceback"}`.

SIGINT is blocked except while user code runs, and one left pending from an earlier run is discarded
first, so an interrupt lands in the code it was meant for and never loses an event.
Needs only the standard library of Python >= 3.9.
"""
from __future__ import annotations

import json
import linecache
import os
import signal
import sys
import traceback
import types

_INTERRUPT = {signal.SIGINT}


def main(request_fd, event_fd):
    signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPT)
    os.set_inheritable(request_fd, False)
    os.set_inheritable(event_fd, False)
    requests = os.fdopen(request_fd, "r", encoding="utf-8", errors="surrogateescape")
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [""]
    for stream in (sys.stdout, sys.stderr):  # also under PYTHONUNBUFFERED, which splits a print in pieces
        stream.reconfigure(line_buffering=True, write_through=False)
    serial = 0
    while True:
        try:
            line = requests.readline()
        except KeyboardInterrupt:  # delivered through a thread the code left running
            continue
        if not line:
            return  # the agent closed the context
        serial += 1
        try:
            event = run(json.loads(line), module.__dict__, "<cell-%d>" % serial)
        except KeyboardInterrupt:
            event = {"type": "interrupted"}
        send(event_fd, (json.dumps(event) + "\n").encode("utf-8", "surrogateescape"))


def run(request, namespace, filename):
    code = request.get("code") or ""
    envs = request.get("envs") or {}
    saved = {name: os.environ.get(name) for name in envs}
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        os.environ.update(envs)
        compiled = compile(code, filename, "exec", dont_inherit=True)  # not this file's __future__ flags
        if signal.SIGINT in signal.sigpending():
            signal.sigwait(_INTERRUPT)  # meant for a run that has already ended
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPT)
        try:
            exec(compiled, namespace)
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPT)
        return {"type": "done"}
    except KeyboardInterrupt:
        return {"type": "interrupted"}
    except BaseException as error:  # SystemExit included: the context lives on
        tb = error.__traceback__.tb_next if error.__traceback__ is not None else None
        return {
            "type": "error",
            "name": type(error).__name__,
            "value": str(error),
            "traceback": "".join(traceback.format_exception(type(error), error, tb)),
        }
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def send(event_fd, data):
    """Flush the code's output, then write the event (the agent reads both before answering)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(event_fd, view):]
        except KeyboardInterrupt:
            continue


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
