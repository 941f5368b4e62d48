"""Running a service's web application as a process: logging, tracing, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from corral_observability import configure, stack_dumps

from . import asyncio_compat


def serve(app: web.Application, *, service: str, host: str, port: int, log_level: str) -> None:
    """Blocks until SIGINT/SIGTERM; the app's cleanup contexts then stop its consumers in order. SIGUSR1 writes
    the process's threads and asyncio tasks to its log (`corral_observability.stack_dumps`)."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure(service)
    asyncio_compat.install()

    async def answer_dump_requests(_: web.Application) -> None:
        stack_dumps.install(asyncio.get_running_loop())

    app.on_startup.append(answer_dump_requests)
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=5)
