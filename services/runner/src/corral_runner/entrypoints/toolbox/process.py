"""Toolbox: `process/execute` and `process/code-run`, plus the agent's identity (`work-dir`, ...)."""

from __future__ import annotations

from aiohttp import web

from corral_agent.client import AgentUnavailable
from corral_web import HttpError, decode_json, reply

from ...app.toolbox import AgentError, CodeRunRequest, ExecResult, ExecuteRequest, code_argv
from .common import DAEMON, PREFIX, TOOLBOX, sandbox_id

routes = web.RouteTableDef()


async def _run(request: web.Request, call) -> ExecResult:  # type: ignore[no-untyped-def]
    try:
        return await call
    except AgentError as error:
        status = 400 if error.code in ("CWD_NOT_FOUND", "BAD_REQUEST") else 502
        raise HttpError(status, error.message, error.code, DAEMON) from None
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


def _timed_out(result: ExecResult, timeout: int | None) -> None:
    if result.timed_out:
        raise HttpError(408, f"Command timed out after {timeout} seconds and was killed",
                        "PROCESS_EXECUTION_TIMEOUT", DAEMON)


@routes.post(PREFIX + "/process/execute")
async def execute(request: web.Request) -> web.Response:
    body = await decode_json(request, ExecuteRequest, empty_ok=False)
    result = await _run(request, request.app[TOOLBOX].execute(sandbox_id(request), body))
    _timed_out(result, body.timeout)
    return reply({"exitCode": result.exit_code, "result": result.output.decode(errors="replace")})


@routes.post(PREFIX + "/process/code-run")
async def code_run(request: web.Request) -> web.Response:
    body = await decode_json(request, CodeRunRequest, empty_ok=False)
    try:
        code_argv(body)
    except ValueError as error:
        raise HttpError(400, str(error), "UNSUPPORTED_LANGUAGE") from None
    result = await _run(request, request.app[TOOLBOX].code_run(sandbox_id(request), body))
    _timed_out(result, body.timeout)
    text = result.output.decode(errors="replace")
    return reply({"exitCode": result.exit_code, "result": text, "artifacts": {"stdout": text, "charts": []}})


@routes.get(PREFIX + "/work-dir")
async def work_dir(request: web.Request) -> web.Response:
    info = await _info(request)
    return reply({"dir": info["workdir"]})


@routes.get(PREFIX + "/user-home-dir")
async def home_dir(request: web.Request) -> web.Response:
    info = await _info(request)
    return reply({"dir": info["home"]})


@routes.get(PREFIX + "/version")
async def version(request: web.Request) -> web.Response:
    info = await _info(request)
    return reply({"version": info["version"]})


async def _info(request: web.Request) -> dict:  # type: ignore[type-arg]
    try:
        return await request.app[TOOLBOX].info(sandbox_id(request))
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None
