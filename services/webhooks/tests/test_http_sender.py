"""The HTTP sender against real HTTP servers: success is a 2xx, redirects are not followed, only a small
excerpt is read, an attempt is bounded in time, refused addresses are never connected to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from corral_stack.ports import free_port
from corral_webhooks.adapters.http_sender import EXCERPT, HttpSender


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str], asyncio.Event]]:
    seen: list[str] = []
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        await request.read()
        if request.path == "/ok":
            return web.Response(status=204)
        if request.path == "/redirect":
            raise web.HTTPFound("/ok")
        if request.path == "/big":
            return web.Response(body=b"x" * (10 * EXCERPT) + b"END")
        if request.path == "/slow":
            await release.wait()
        return web.Response(status=500, text="broken")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"127.0.0.1:{port}", seen, release
    release.set()
    await runner.cleanup()


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    started = HttpSender(allow_private=True, timeout=0.5)
    await started.start()
    yield started
    await started.stop()


async def test_a_2xx_is_a_success_anything_else_a_failure(server, sender: HttpSender) -> None:  # type: ignore[no-untyped-def]
    address, _, _ = server
    ok = await sender.send(f"http://{address}/ok", {}, b"{}")
    assert ok.succeeded and ok.status_code == 204 and ok.latency_ms > 0
    broken = await sender.send(f"http://{address}/broken", {}, b"{}")
    assert not broken.succeeded and broken.status_code == 500 and broken.response == "broken"


async def test_redirects_are_not_followed(server, sender: HttpSender) -> None:  # type: ignore[no-untyped-def]
    address, seen, _ = server
    result = await sender.send(f"http://{address}/redirect", {}, b"{}")
    assert not result.succeeded and result.status_code == 302 and "not followed" in result.error
    assert seen == ["/redirect"]


async def test_only_an_excerpt_of_the_response_is_read(server, sender: HttpSender) -> None:  # type: ignore[no-untyped-def]
    address, _, _ = server
    result = await sender.send(f"http://{address}/big", {}, b"{}")
    assert result.succeeded and len(result.response) == EXCERPT and "END" not in result.response


async def test_an_attempt_is_bounded_in_time(server, sender: HttpSender) -> None:  # type: ignore[no-untyped-def]
    address, _, _ = server
    result = await sender.send(f"http://{address}/slow", {}, b"{}")
    assert not result.succeeded and result.status_code is None and "no answer within 0.5s" in result.error


async def test_refused_addresses_are_never_connected_to(server) -> None:  # type: ignore[no-untyped-def]
    address, seen, _ = server
    port = address.rsplit(":", 1)[1]
    strict = HttpSender(allow_private=False, timeout=2)
    await strict.start()
    try:
        for url in (f"http://{address}/ok", f"http://localhost:{port}/ok", f"http://[::ffff:127.0.0.1]:{port}/ok",
                    "http://169.254.169.254/latest/meta-data/"):
            result = await strict.send(url, {}, b"{}")
            assert not result.succeeded and result.error.startswith("refused:"), (url, result)
    finally:
        await strict.stop()
    assert seen == []


async def test_a_closed_port_is_a_connection_failure(sender: HttpSender) -> None:
    result = await sender.send(f"http://127.0.0.1:{free_port()}/", {}, b"{}")
    assert not result.succeeded and result.error.startswith("connection failed")
