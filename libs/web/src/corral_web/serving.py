"""Running a service's web application as a process: logging, tracing, graceful shutdown."""

from __future__ import annotations

import logging

from aiohttp import web

from corral_observability import configure


def serve(app: web.Application, *, service: str, host: str, port: int, log_level: str) -> None:
    """Blocks until SIGINT/SIGTERM; the app's cleanup contexts then stop its consumers in order."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure(service)
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=5)
