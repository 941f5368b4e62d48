"""The handlers of the code-interpreter ops, and the contexts of one agent.

    interpreter_create {cwd?}                              -> result {context}
    interpreter_list   {}                                  -> result {contexts} (not the default one)
    interpreter_delete {id}                                -> result
    interpreter_run    {code, contextId?, envs?, timeout?} -> stdout/stderr {text}..., exception
                       {name, value, traceback}, then result {status: completed | timeout | interrupted}

Without `contextId` a run uses the default context, started on first use in the working directory.
"""
from __future__ import annotations

import math
import sys
import threading

from .context import AgentContext, find_program
from .errors import BAD_REQUEST, AgentError
from .exec_request import resolve_cwd
from .interpreter_context import Interpreter, repl_source
from .sessions_commands import new_id

CONTEXT_NOT_FOUND = "CONTEXT_NOT_FOUND"
DEFAULT_CONTEXT = "default"


class Interpreters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._default_lock = threading.Lock()  # one default context, however many runs ask at once
        self._contexts: dict[str, Interpreter] = {}
        self._source: bytes | None = None

    def create(self, context: AgentContext, cwd: object, context_id: str | None = None) -> Interpreter:
        env = context.environment()
        python = find_program(("python3", "python"), env.get("PATH", "")) or sys.executable
        if self._source is None:
            self._source = repl_source()
        interpreter = Interpreter(context_id or new_id(), resolve_cwd(cwd, context.workdir), env, python,
                                  self._source, context.groups)
        interpreter.start()
        with self._lock:
            self._contexts[interpreter.id] = interpreter
        return interpreter

    def get(self, context: AgentContext, context_id: object) -> Interpreter:
        if context_id is None:
            with self._default_lock:
                with self._lock:
                    interpreter = self._contexts.get(DEFAULT_CONTEXT)
                return interpreter or self.create(context, None, DEFAULT_CONTEXT)
        with self._lock:
            interpreter = self._contexts.get(context_id) if isinstance(context_id, str) else None
        if interpreter is None:
            raise AgentError(CONTEXT_NOT_FOUND, "interpreter context %s not found" % (context_id,))
        return interpreter

    def delete(self, context_id: object) -> None:
        if context_id == DEFAULT_CONTEXT:
            raise AgentError(BAD_REQUEST, "the default context cannot be deleted")
        with self._lock:
            interpreter = self._contexts.pop(context_id, None) if isinstance(context_id, str) else None
        if interpreter is None:
            raise AgentError(CONTEXT_NOT_FOUND, "interpreter context %s not found" % (context_id,))
        interpreter.deleted = True
        interpreter.stop()

    def busy(self) -> int:
        """Contexts running code: activity that keeps the sandbox up."""
        with self._lock:
            return sum(1 for interpreter in self._contexts.values() if interpreter.running)

    def listed(self) -> list[Interpreter]:
        with self._lock:
            return [i for i in self._contexts.values() if i.id != DEFAULT_CONTEXT]


def _interpreters(context: AgentContext) -> Interpreters:
    return context.area("interpreter", Interpreters)


def create_context(message: dict, context: AgentContext, connection) -> None:  # type: ignore[no-untyped-def]
    interpreter = _interpreters(context).create(context, message.get("cwd"))
    connection.send({"type": "result", "context": interpreter.describe()})


def list_contexts(message: dict, context: AgentContext, connection) -> None:  # type: ignore[no-untyped-def]
    connection.send({"type": "result", "contexts": [i.describe() for i in _interpreters(context).listed()]})


def delete_context(message: dict, context: AgentContext, connection) -> None:  # type: ignore[no-untyped-def]
    _interpreters(context).delete(message.get("id"))
    connection.send({"type": "result"})


def run_code(message: dict, context: AgentContext, connection) -> None:  # type: ignore[no-untyped-def]
    code = message.get("code")
    if not isinstance(code, str):
        raise AgentError(BAD_REQUEST, "'code' must be a string")
    envs = message.get("envs") or {}
    if not isinstance(envs, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k
                                             and "\0" not in k + v for k, v in envs.items()):
        raise AgentError(BAD_REQUEST, "'envs' must map variable names to string values")
    timeout = message.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not math.isfinite(timeout) or timeout < 0):
        raise AgentError(BAD_REQUEST, "'timeout' must be a number of seconds >= 0")
    interpreter = _interpreters(context).get(context, message.get("contextId"))
    status = interpreter.run(code, envs, timeout or None, connection.send, connection.sock)
    if status != "interrupted":  # "interrupted": the client is gone
        connection.send({"type": "result", "status": status})


HANDLERS = {
    "interpreter_create": create_context,
    "interpreter_list": list_contexts,
    "interpreter_delete": delete_context,
    "interpreter_run": run_code,
}
