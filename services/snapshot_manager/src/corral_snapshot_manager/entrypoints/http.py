"""The snapshot manager's internal HTTP: snapshot images streamed to runners that lack them (`docker save`),
and received from runners that captured a sandbox (`docker load`). Internal token only."""

from __future__ import annotations

import hmac

from aiohttp import web

from corral_web import error_response, json_errors

from ..adapters.docker_images import DockerImages

IMAGES = web.AppKey("images", DockerImages)
TOKEN = web.AppKey("token", str)


@web.middleware
async def internal_only(request: web.Request, handler):  # type: ignore[no-untyped-def]
    if request.path == "/health":
        return await handler(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), request.app[TOKEN]):
        return error_response(401, "internal token required", "UNAUTHORIZED")
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    """Also names the Docker engine this service keeps snapshots on: a runner on the same engine tags them
    instead of copying them."""
    return web.json_response({"status": "ok", "engine": await request.app[IMAGES].engine_id()})


async def get_image(request: web.Request) -> web.StreamResponse:
    ref = request.query.get("ref", "")
    images = request.app[IMAGES]
    if not ref or not await images.present(ref):
        return error_response(404, f"image {ref} not found", "NOT_FOUND")
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    async for chunk in images.save(ref):
        await response.write(chunk)
    await response.write_eof()
    return response


async def put_image(request: web.Request) -> web.Response:
    await request.app[IMAGES].load(request.content.iter_chunked(1024 * 1024))
    return web.json_response({"loaded": True})


def create_app(images: DockerImages, token: str) -> web.Application:
    app = web.Application(middlewares=[json_errors(), internal_only], client_max_size=1024**4)
    app[IMAGES] = images
    app[TOKEN] = token
    app.router.add_get("/health", health)
    app.router.add_get("/images", get_image)
    app.router.add_put("/images", put_image)
    return app
