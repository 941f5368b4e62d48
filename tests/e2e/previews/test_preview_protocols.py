"""What travels through a preview: request and response bodies streamed both ways (chunked bodies and
server-sent events chunk by chunk), WebSockets in both directions with every credential, a clear 502
when nothing listens, servers bound to 127.0.0.1 (even without network), and a real browser."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from daytona import CreateSandboxFromSnapshotParams

from corral_stack.stack import Stack

from .chromium import Chromium
from .conftest import APP_PORT, AppSandbox
from .preview_client import host_url, path_url, start_app

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def token(app: AppSandbox) -> dict[str, str]:
    return {"X-Daytona-Preview-Token": app.token}


async def test_request_bodies_stream_up_with_their_length_or_chunked(stack: Stack, app: AppSandbox,
                                                                     client: aiohttp.ClientSession) -> None:
    url = host_url(stack, APP_PORT, app.id) + "/echo"
    payload = os.urandom(3 * 1024 * 1024)
    async with client.post(url, data=payload, headers=token(app)) as response:
        assert response.status == 200 and response.headers["X-Body-Length"] == str(len(payload))
        assert await response.read() == payload

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start:start + 100_000]

    async with client.post(url, data=chunks(), headers=token(app)) as response:
        assert response.status == 200 and await response.read() == payload


async def test_chunked_responses_and_server_sent_events_arrive_chunk_by_chunk(
        stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    """The app holds back the rest of its answer until /release is called: the first chunk can only be
    read before that if no hop buffers the response."""
    base = path_url(stack, APP_PORT, app.id)
    for path, first, rest, kind in (("/stream", b"first\n", b"second\nthird\n", "text/plain"),
                                    ("/events", b"data: one\n\n", b"data: two\n\n", "text/event-stream")):
        async with client.get(base + path, headers=token(app)) as response:
            assert response.status == 200 and response.headers["Content-Type"] == kind
            assert response.headers.get("Transfer-Encoding") == "chunked"
            got = b""
            async with asyncio.timeout(30):
                while len(got) < len(first):
                    got += await response.content.readany()
            assert got == first
            async with client.get(base + "/release", headers=token(app)) as released:
                assert released.status == 200
            assert got + await response.read() == first + rest


async def test_large_downloads_and_head_requests(stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    url = host_url(stack, APP_PORT, app.id) + "/bytes?size=33554432"
    async with client.get(url, headers=token(app)) as response:
        digest, size = hashlib.sha256(), 0
        async for chunk in response.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
    assert size == 32 * 1024 * 1024 and digest.hexdigest() == hashlib.sha256(b"x" * size).hexdigest()
    async with client.head(url, headers=token(app)) as response:
        assert response.status == 200 and response.headers["Content-Length"] == str(size)
        assert await response.read() == b""


async def test_nothing_listening_is_a_clear_502(stack: Stack, app: AppSandbox, client: aiohttp.ClientSession) -> None:
    url = host_url(stack, 9999, app.id) + "/"
    async with client.get(url, headers=token(app)) as response:
        body = await response.json()
    assert (response.status, body["code"], body["message"]) == (
        502, "PORT_CLOSED", "Nothing is listening on port 9999 in the sandbox")
    async with client.get(url, headers={**token(app), "Accept": "text/html"}) as response:
        page = await response.text()
    assert response.status == 502 and "python3 -m http.server 9999" in page
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(host_url(stack, 9999, app.id) + "/ws", headers=token(app))
    assert refused.value.status == 502


async def echo_both_ways(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_str("hello ünïcode")
    assert await ws.receive_str() == "hello ünïcode"
    blob = os.urandom(300_000)
    await ws.send_bytes(blob)
    assert await ws.receive_bytes() == blob
    await ws.send_str("close")
    message = await ws.receive()
    assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, 4001, "bye")


async def test_websockets_take_every_credential(stack: Stack, app: AppSandbox, client: aiohttp.ClientSession,
                                                other_key: str) -> None:
    host, path = host_url(stack, APP_PORT, app.id), path_url(stack, APP_PORT, app.id)
    async with client.get(host + "/hello", params={"DAYTONA_SANDBOX_AUTH_KEY": app.token}) as response:
        cookie = response.cookies[f"daytona-sandbox-auth-{app.id}"].value
    signed = app.sandbox.create_signed_preview_url(APP_PORT, 120)
    ways: list[tuple[str, dict[str, Any]]] = [
        (host + "/ws", {"headers": token(app)}),
        (path + "/ws", {"headers": token(app)}),
        (host + "/ws", {"params": {"DAYTONA_SANDBOX_AUTH_KEY": app.token}}),
        (host + "/ws", {"headers": {"Cookie": f"daytona-sandbox-auth-{app.id}={cookie}"}}),
        (host + "/ws", {"headers": {"Authorization": f"Bearer {stack.admin_api_key}"}}),
        (signed.url + "/ws", {}),
        (path_url(stack, APP_PORT, signed.token) + "/ws", {}),
    ]
    for url, kwargs in ways:
        async with client.ws_connect(url, protocols=("chat",), **kwargs) as ws:
            assert ws.protocol == "chat", url
            await echo_both_ways(ws)
    for kwargs, status in (({}, 401), ({"headers": {"X-Daytona-Preview-Token": "0" * 32}}, 403),
                           ({"headers": {"Authorization": f"Bearer {other_key}"}}, 404)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(host + "/ws", **kwargs)
        assert refused.value.status == status, kwargs


async def test_the_toolbox_proxy_endpoint_reaches_ports_with_an_api_key(stack: Stack, app: AppSandbox) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_api_key}"}) as session:
        async with session.get(f"{stack.toolbox_url}/{app.id}/proxy/{APP_PORT}/hello") as response:
            assert response.status == 200 and await response.text() == "hello from the sandbox\n"
        async with session.ws_connect(f"{stack.toolbox_url}/{app.id}/proxy/{APP_PORT}/ws") as ws:
            await echo_both_ways(ws)


async def test_a_sandbox_without_network_serves_its_localhost_app(stack: Stack, daytona: Any,
                                                                  client: aiohttp.ClientSession) -> None:
    sandbox = await asyncio.to_thread(daytona.create, CreateSandboxFromSnapshotParams(
        network_block_all=True, auto_stop_interval=0), timeout=120)
    try:
        await asyncio.to_thread(start_app, sandbox, 3000)
        assert (await asyncio.to_thread(sandbox.process.exec, "python3 -c \"import urllib.request as u; "
                                        "u.urlopen('http://example.com', timeout=3)\"")).exit_code != 0
        link = sandbox.get_preview_link(3000)
        async with client.get(link.url + "/hello", headers={"X-Daytona-Preview-Token": link.token}) as response:
            assert response.status == 200 and await response.text() == "hello from the sandbox\n"
    finally:
        await asyncio.to_thread(daytona.delete, sandbox, 60)


@pytest.mark.parametrize("form", ["host", "path"])
async def test_a_browser_loads_a_private_preview_whose_page_talks_back_over_a_websocket(
        stack: Stack, app: AppSandbox, form: str) -> None:
    """The token in the URL opens the page and sets the preview cookie; the page's script opens a
    WebSocket to the same preview (the cookie authenticates it) and shows what the app echoed."""
    base = (host_url if form == "host" else path_url)(stack, APP_PORT, app.id)
    async with Chromium() as browser:
        shown = await browser.read(f"{base}/?DAYTONA_SANDBOX_AUTH_KEY={app.token}",
                                   "document.getElementById('result') && document.getElementById('result')"
                                   ".dataset.done ? document.getElementById('result').textContent : null")
    origin = base.split("//", 1)[1].split("/", 1)[0]
    assert shown == f"got: echo through {origin}"
