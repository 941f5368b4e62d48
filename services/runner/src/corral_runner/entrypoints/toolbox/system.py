"""Toolbox: `POST /env` and `GET /system/metrics` (daytona-wire.md §5.13)."""

from __future__ import annotations

from aiohttp import web

from corral_agent.client import AgentUnavailable
from corral_web import HttpError, decode_json, reply

from ...app.system import (ContainerStats, EnvUpdate, MetricsUnavailable, SandboxMetrics, SandboxNotRunning,
                           update_env)
from ...app.toolbox import AgentError
from .common import AGENT, DAEMON, PREFIX, TOOLBOX, sandbox_id

routes = web.RouteTableDef()
METRICS = web.AppKey("metrics", SandboxMetrics)


def setup(app: web.Application, stats: ContainerStats | None) -> None:
    """Metrics need the host's view of the containers; without it the endpoint answers 503."""
    if stats is not None:
        app[METRICS] = SandboxMetrics(stats)


def _not_running(request: web.Request) -> HttpError:
    return HttpError(502, f"Sandbox {sandbox_id(request)} is not running on this runner", "SANDBOX_NOT_RUNNING",
                     DAEMON)


@routes.post(PREFIX + "/env")
async def env(request: web.Request) -> web.Response:
    update = await decode_json(request, EnvUpdate, empty_ok=False)
    try:
        return reply(await update_env(request.app[AGENT], request.app[TOOLBOX], sandbox_id(request), update))
    except AgentError as error:
        raise HttpError(400 if error.code == "BAD_REQUEST" else 502, error.message, error.code, DAEMON) from None
    except AgentUnavailable:
        raise _not_running(request) from None


@routes.get(PREFIX + "/system/metrics")
async def metrics(request: web.Request) -> web.Response:
    source = request.app.get(METRICS)
    if source is None:
        raise HttpError(503, "This runner does not measure sandboxes", "METRICS_UNAVAILABLE", DAEMON)
    try:
        return reply(await source.latest(sandbox_id(request)))
    except SandboxNotRunning:
        raise _not_running(request) from None
    except MetricsUnavailable as error:
        raise HttpError(503, str(error), "METRICS_UNAVAILABLE", DAEMON) from None
