"""The WebSocket bridge (proxy and runner) against a real upstream aiohttp server (in-process, free ports)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from corral_web.websockets import bridge, sendable_code

EXIT_REASON = '{"exitCode":3}'
SESSION = web.AppKey("session", aiohttp.ClientSession)


@dataclass
class Upstream:
    url: str
    closes: asyncio.Queue = field(default_factory=asyncio.Queue)  # (code, reason) of client closes


def upstream_app(upstream: Upstream) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("chosen",))
        await ws.prepare(request)
        await ws.send_str(f"hello {request.query.get('who', '')} {request.headers.get('X-Hop', '')}")
        while True:
            message = await ws.receive()
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
            elif message.type == WSMsgType.TEXT and message.data == "exit":
                await ws.close(code=1000, message=EXIT_REASON.encode())
            elif message.type == WSMsgType.TEXT and message.data == "vanish":
                assert request.transport is not None
                request.transport.abort()  # no close frame at all
                return ws
            elif message.type == WSMsgType.CLOSE:
                upstream.closes.put_nowait((message.data, message.extra))
                return ws
            elif message.type != WSMsgType.TEXT:
                return ws

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"message": "PTY session x not found"}, status=404)

    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_get("/refuse", refuse)
    return app


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[str, Upstream]]:
    upstream = Upstream(url="")
    upstream_server = TestServer(upstream_app(upstream))
    await upstream_server.start_server()
    upstream.url = str(upstream_server.make_url("")).rstrip("/").replace("http", "ws", 1)
    dead = TestServer(web.Application())
    await dead.start_server()
    dead_url = str(dead.make_url("/x")).replace("http", "ws", 1)
    await dead.close()  # a port where nobody listens any more

    async def proxy(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        url = dead_url if tail == "dead" else f"{upstream.url}/{tail}"
        return await bridge(request, request.app[SESSION], url, {"X-Hop": "via-proxy"}, params=request.query)

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession()
        yield
        await app[SESSION].close()

    app = web.Application()
    app.router.add_get("/p/{tail:.*}", proxy)
    app.cleanup_ctx.append(session)
    proxy_server = TestServer(app)
    await proxy_server.start_server()
    try:
        yield str(proxy_server.make_url("/p")), upstream
    finally:
        await proxy_server.close()
        await upstream_server.close()


async def test_frames_subprotocol_query_and_close_reason_pass_through(proxied: tuple[str, Upstream]) -> None:
    base, _ = proxied
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{base}/echo?who=me", protocols=("X-Envs~e30", "chosen")) as ws:
            assert ws.protocol == "chosen"
            assert (await ws.receive_str()) == "hello me via-proxy"
            await ws.send_bytes(b"\x00\x01\xff")
            assert (await ws.receive_bytes()) == b"\xff\x01\x00"
            await ws.send_str("exit")
            message = await ws.receive()
            assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 1000, EXIT_REASON)


async def test_a_client_close_reaches_the_upstream_with_its_code(proxied: tuple[str, Upstream]) -> None:
    base, upstream = proxied
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{base}/echo")
        await ws.receive_str()
        await ws.close(code=4001)
    assert await asyncio.wait_for(upstream.closes.get(), 10) == (4001, "")


async def test_an_upstream_that_vanishes_is_reported_with_a_valid_code(proxied: tuple[str, Upstream]) -> None:
    base, _ = proxied
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{base}/echo") as ws:
            await ws.receive_str()
            await ws.send_str("vanish")
            message = await ws.receive()
            assert (message.type, message.data) == (WSMsgType.CLOSE, 1014)
            assert "lost" in message.extra


async def test_refusals_and_unreachable_upstreams_are_http_errors(proxied: tuple[str, Upstream]) -> None:
    base, _ = proxied
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/refuse")
        assert refused.value.status == 404
        with pytest.raises(aiohttp.WSServerHandshakeError) as unreachable:
            await http.ws_connect(f"{base}/dead")
        assert unreachable.value.status == 502


def test_close_codes_that_may_not_be_sent_are_replaced() -> None:
    assert [sendable_code(c) for c in (None, 0, 1000, 1005, 1006, 1011, 1015, 2000, 4008)] == [
        1000, 1000, 1000, 1000, 1011, 1011, 1011, 1011, 4008]
