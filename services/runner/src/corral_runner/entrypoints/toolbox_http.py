"""The runner's toolbox front: `/toolbox/{sandboxId}/...`, reached only through the proxy.

Every request must carry the internal token shared with the proxy (`X-Corral-Internal-Token`): the
front is never open to sandboxes or other local users.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from corral_agent.client import AgentUnavailable
from corral_web import HttpError, decode_json, error_response, json_errors, reply

from ..app.toolbox import AgentError, CodeRunRequest, code_argv, ExecuteRequest, ExecResult, Toolbox

log = logging.getLogger(__name__)

TOOLBOX = web.AppKey("toolbox", Toolbox)
INTERNAL_TOKEN_HEADER = "X-Corral-Internal-Token"
DAEMON = "DAYTONA_DAEMON"


def _sandbox(request: web.Request) -> str:
    return request.match_info["sandbox_id"]


async def _run(request: web.Request, call) -> ExecResult:  # type: ignore[no-untyped-def]
    try:
        return await call
    except AgentError as error:
        status = 400 if error.code in ("CWD_NOT_FOUND", "BAD_REQUEST") else 502
        raise HttpError(status, error.message, error.code, DAEMON) from None
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {_sandbox(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


def _timed_out(result: ExecResult, timeout: int | None) -> None:
    if result.timed_out:
        raise HttpError(408, f"Command timed out after {timeout} seconds and was killed",
                        "PROCESS_EXECUTION_TIMEOUT", DAEMON)


async def execute(request: web.Request) -> web.Response:
    body = await decode_json(request, ExecuteRequest, empty_ok=False)
    result = await _run(request, request.app[TOOLBOX].execute(_sandbox(request), body))
    _timed_out(result, body.timeout)
    return reply({"exitCode": result.exit_code, "result": result.output.decode(errors="replace")})


async def code_run(request: web.Request) -> web.Response:
    body = await decode_json(request, CodeRunRequest, empty_ok=False)
    try:
        code_argv(body)
    except ValueError as error:
        raise HttpError(400, str(error), "UNSUPPORTED_LANGUAGE") from None
    result = await _run(request, request.app[TOOLBOX].code_run(_sandbox(request), body))
    _timed_out(result, body.timeout)
    text = result.output.decode(errors="replace")
    return reply({"exitCode": result.exit_code, "result": text, "artifacts": {"stdout": text, "charts": []}})


async def work_dir(request: web.Request) -> web.Response:
    info = await _info(request)
    return reply({"dir": info["workdir"]})


async def home_dir(request: web.Request) -> web.Response:
    info = await _info(request)
    return reply({"dir": info["home"]})


async def version(request: web.Request) -> web.Response:
    info = await _info(request)
    return reply({"version": info["version"]})


async def _info(request: web.Request) -> dict:  # type: ignore[type-arg]
    try:
        return await request.app[TOOLBOX].info(_sandbox(request))
    except AgentUnavailable:
        raise HttpError(502, f"Sandbox {_sandbox(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                        DAEMON) from None


def internal_auth(token: str):  # type: ignore[no-untyped-def]
    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        presented = request.headers.get(INTERNAL_TOKEN_HEADER, "")
        if request.path != "/health" and not hmac.compare_digest(presented.encode(), token.encode()):
            return error_response(401, "This endpoint is internal: reach the toolbox through the proxy")
        return await handler(request)

    return middleware


async def health(request: web.Request) -> web.Response:
    return reply({"status": "ok"})


def create_toolbox_app(toolbox: Toolbox, internal_token: str) -> web.Application:
    app = web.Application(middlewares=[json_errors(), internal_auth(internal_token)], client_max_size=64 * 1024**2)
    app[TOOLBOX] = toolbox
    prefix = "/toolbox/{sandbox_id}"
    app.router.add_get("/health", health)
    app.router.add_post(prefix + "/process/execute", execute)
    app.router.add_post(prefix + "/process/code-run", code_run)
    app.router.add_get(prefix + "/work-dir", work_dir)
    app.router.add_get(prefix + "/user-home-dir", home_dir)
    app.router.add_get(prefix + "/version", version)
    return app
