"""The runner's toolbox front: `/toolbox/{sandboxId}/...`, reached only through the proxy.

Every request must carry the internal token shared with the proxy (`X-Corral-Internal-Token`): the
front is never open to sandboxes or other local users. Each area of the toolbox protocol is one module
with its own `routes` table.
"""

from __future__ import annotations

from aiohttp import web

from corral_web import json_errors, reply

from ...adapters.agent_link import AgentLink
from ...app.system import ContainerStats
from ...app.toolbox import Toolbox
from .. import internal
from . import files, git, interpreter, port_proxy, process, pty, sessions, system, tunnel
from .common import AGENT, TOOLBOX, internal_auth

AREAS = (process, files, sessions, pty, interpreter, git, system, tunnel, port_proxy)


async def health(request: web.Request) -> web.Response:
    return reply({"status": "ok"})


def create_toolbox_app(agent: AgentLink, internal_token: str,
                       container_stats: ContainerStats | None = None) -> web.Application:
    app = web.Application(middlewares=[json_errors(), internal_auth(internal_token)], client_max_size=64 * 1024**2)
    app[AGENT] = agent
    app[TOOLBOX] = Toolbox(agent)
    system.setup(app, container_stats)
    port_proxy.setup(app, agent)
    app.router.add_get("/health", health)
    for area in AREAS:
        app.add_routes(area.routes)
    app.add_routes(internal.routes)
    return app
