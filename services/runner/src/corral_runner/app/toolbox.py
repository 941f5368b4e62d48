"""Toolbox use cases: the public (Daytona) toolbox protocol translated into agent calls."""

from __future__ import annotations

import base64
from contextlib import aclosing
from typing import Any

import msgspec

from ..adapters.agent_link import AgentLink

MAX_RESULT_BYTES = 64 * 1024**2
"""`execute`/`code-run` answer with the whole output in one JSON body; beyond this it is cut (sessions
stream instead)."""


class ExecuteRequest(msgspec.Struct, kw_only=True):
    command: str
    cwd: str | None = None
    envs: dict[str, str] | None = None
    timeout: int | None = None


class CodeRunRequest(msgspec.Struct, kw_only=True):
    code: str
    language: str | None = None
    argv: list[str] | None = None
    envs: dict[str, str] | None = None
    timeout: int | None = None


class ExecResult(msgspec.Struct, kw_only=True):
    exit_code: int
    output: bytes
    timed_out: bool
    truncated: bool


class AgentError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


TYPESCRIPT_RUNNER = """
const ts = require("typescript"), Module = require("module"), path = require("path");
const file = path.join(process.cwd(), "[eval].ts");
const out = ts.transpileModule(require("fs").readFileSync(0, "utf8"), {fileName: file, reportDiagnostics: true,
  compilerOptions: {module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true,
                    inlineSourceMap: true, inlineSources: true}});
const errors = (out.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error);
if (errors.length) {
  process.stderr.write(ts.formatDiagnostics(errors, {getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => process.cwd(), getNewLine: () => "\\n"}));
  process.exit(1);
}
const main = new Module(file, null);
main.filename = file;
main.paths = Module._nodeModulePaths(process.cwd());
main._compile(out.outputText, file);
"""
"""TypeScript: the source (on stdin, so any size) is transpiled in memory with the image's `typescript`
package (Debian's node-typescript: syntax is checked, types are not, as `ts-node --transpile-only`),
then runs as a CommonJS module named `[eval].ts` in the working directory; stack traces point into the
TypeScript source. `process.argv` is `[node, ...argv]`, as for JavaScript."""


def code_argv(request: CodeRunRequest) -> list[str]:
    language = (request.language or "python").lower()
    argv = request.argv or []
    if language == "python":
        return ["python3", "-u", "-c", request.code, *argv]
    if language == "javascript":
        return ["node", "-e", request.code, "--", *argv]
    if language == "typescript":
        return ["node", "--enable-source-maps", "-e", TYPESCRIPT_RUNNER, "--", *argv]
    raise ValueError(f"language {language!r} is not supported here (python, javascript, typescript)")


def code_stdin(request: CodeRunRequest) -> str | None:
    """What the code-run process reads on stdin (base64, for the agent): the source, for TypeScript."""
    if (request.language or "python").lower() == "typescript":
        return base64.b64encode(request.code.encode(errors="surrogateescape")).decode()
    return None


class Toolbox:
    def __init__(self, agent: AgentLink):
        self._agent = agent

    async def exec(self, sandbox_id: str, request: dict[str, Any]) -> ExecResult:
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async with aclosing(self._agent.call(sandbox_id, {"op": "exec", **request})) as frames:
            async for frame in frames:
                kind = frame.get("type")
                if kind == "output":
                    data = base64.b64decode(frame["data"])
                    if size + len(data) > MAX_RESULT_BYTES:
                        data = data[: max(0, MAX_RESULT_BYTES - size)]
                        truncated = True
                    size += len(data)
                    chunks.append(data)
                elif kind == "exit":
                    return ExecResult(exit_code=int(frame["exitCode"]), output=b"".join(chunks),
                                      timed_out=bool(frame.get("timedOut")), truncated=truncated)
                elif kind == "error":
                    raise AgentError(str(frame.get("code", "AGENT_ERROR")), str(frame.get("message", "")))
        raise AgentError("AGENT_DISCONNECTED", "the sandbox agent closed the connection before the command ended")

    async def execute(self, sandbox_id: str, request: ExecuteRequest) -> ExecResult:
        return await self.exec(sandbox_id, {"command": request.command, "cwd": request.cwd, "env": request.envs,
                                            "timeout": request.timeout or None})

    async def code_run(self, sandbox_id: str, request: CodeRunRequest) -> ExecResult:
        return await self.exec(sandbox_id, {"argv": code_argv(request), "stdin": code_stdin(request),
                                            "env": request.envs, "timeout": request.timeout or None})

    async def info(self, sandbox_id: str) -> dict[str, Any]:
        return await self._agent.ping(sandbox_id, timeout=5.0)
