"""`python -m corral_proxy`: toolbox routing (and, later, previews)."""

from __future__ import annotations

import logging

from aiohttp import web

from corral_observability import configure

from .bootstrap import build
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure("corral-proxy")
    proxy = build(settings)
    web.run_app(proxy.app, host=settings.host, port=settings.port, print=None, access_log=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()
