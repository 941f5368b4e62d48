"""The webhooks service's own HTTP: health only (its API is the api's `/api/webhooks/…`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

STATUS = web.AppKey("status", Callable[[], dict[str, Any]])


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", **request.app[STATUS]()})


def create_app(status: Callable[[], dict[str, Any]]) -> web.Application:
    app = web.Application()
    app[STATUS] = status
    app.router.add_get("/health", health)
    return app
