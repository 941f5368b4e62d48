"""The runner's port tunnel through a real sandbox container: `AgentLink.open_tunnel` and the internal
WebSocket `GET /toolbox/{id}/tunnel/{port}` reach servers bound to the sandbox's 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from daytona import Daytona, DaytonaConfig

from corral_agent.client import PortClosed
from corral_runner.adapters.agent_link import AgentLink
from corral_stack.stack import Stack
from corral_testing.waiting import wait_for

pytestmark = [pytest.mark.docker]

ECHO_PORT, BANNER_PORT, CLOSED_PORT = 7101, 7102, 7103
SERVERS = f"""
import socket, threading
def serve(port, handle):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    def loop():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
def banner(conn):
    with conn:
        conn.sendall(b"hello from inside, then goodbye")
serve({ECHO_PORT}, echo)
serve({BANNER_PORT}, banner)
open("/tmp/tunnel-servers.ready", "w").close()
threading.Event().wait()
"""


@pytest.fixture(scope="module")
def sandbox_id(stack: Stack) -> Iterator[str]:
    daytona = Daytona(DaytonaConfig(api_key=stack.admin_api_key, api_url=stack.api_url))
    sandbox = daytona.create(timeout=120)
    try:
        script = base64.b64encode(SERVERS.encode()).decode()
        sandbox.process.exec(f"echo {script} | base64 -d > /tmp/servers.py && "
                             "nohup python3 /tmp/servers.py > /tmp/servers.log 2>&1 < /dev/null &")
        deadline = time.monotonic() + 30
        while sandbox.process.exec("test -e /tmp/tunnel-servers.ready").exit_code != 0:
            assert time.monotonic() < deadline, sandbox.process.exec("cat /tmp/servers.log").result
        yield sandbox.id
    finally:
        daytona.delete(sandbox, timeout=60)


@pytest.fixture
def runner(stack: Stack) -> tuple[str, str]:
    ((runner_id, port),) = stack.config.runner_ports.items()
    return runner_id, f"http://{stack.config.host}:{port}"


@pytest.fixture
async def session(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                     headers={"X-Corral-Internal-Token": stack.internal_token}) as client:
        yield client


def agent_link(stack: Stack, runner_id: str) -> AgentLink:
    return AgentLink(stack.home / "runners" / runner_id / "runs")


async def test_agent_link_tunnels_to_a_localhost_server_and_counts_as_activity(stack: Stack, sandbox_id: str,
                                                                              runner: tuple[str, str]):
    link = agent_link(stack, runner[0])
    before = await link.activity(sandbox_id)
    stream = await link.open_tunnel(sandbox_id, ECHO_PORT)
    try:
        await stream.send_raw(b"through the container's loopback")
        assert await stream.read_exactly(32) == b"through the container's loopback"
        assert await link.activity(sandbox_id) == before + 1
    finally:
        await stream.close()

    async def released() -> bool:
        return await link.activity(sandbox_id) == before

    await wait_for(released, timeout=10, message="the closed tunnel still counts as activity")
    with pytest.raises(PortClosed) as refused:
        await link.open_tunnel(sandbox_id, CLOSED_PORT)
    assert refused.value.message == f"nothing is listening on port {CLOSED_PORT} in the sandbox"


async def test_websocket_tunnel_carries_a_large_stream_both_ways(sandbox_id: str, runner: tuple[str, str],
                                                               session: aiohttp.ClientSession):
    payload = os.urandom(8 * 1024 * 1024)
    async with session.ws_connect(f"{runner[1]}/toolbox/{sandbox_id}/tunnel/{ECHO_PORT}", max_msg_size=0) as ws:
        async def push() -> None:
            for start in range(0, len(payload), 64 * 1024):
                await ws.send_bytes(payload[start:start + 64 * 1024])

        pushed = asyncio.create_task(push())
        received = bytearray()
        async with asyncio.timeout(60):
            while len(received) < len(payload):
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.BINARY, message
                received += message.data
        await pushed
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


async def test_websocket_tunnel_closes_1000_when_the_sandbox_side_ends(sandbox_id: str, runner: tuple[str, str],
                                                                      session: aiohttp.ClientSession):
    async with session.ws_connect(f"{runner[1]}/toolbox/{sandbox_id}/tunnel/{BANNER_PORT}") as ws:
        received = b""
        async with asyncio.timeout(30):
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.BINARY, message
                received += message.data
        assert received == b"hello from inside, then goodbye"
        assert ws.close_code == 1000


async def test_refusals_come_before_the_upgrade_as_json(stack: Stack, sandbox_id: str, runner: tuple[str, str],
                                                       session: aiohttp.ClientSession):
    base = f"{runner[1]}/toolbox/{sandbox_id}/tunnel"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(f"{base}/{CLOSED_PORT}")
    assert refused.value.status == 502
    async with session.get(f"{base}/{CLOSED_PORT}", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                             "Sec-WebSocket-Version": "13",
                                                             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
        assert r.status == 502
        body = await r.json()
    assert body["code"] == "PORT_CLOSED" and body["statusCode"] == 502
    assert body["message"] == f"nothing is listening on port {CLOSED_PORT} in the sandbox"
    for bad in ("0", "65536", "http"):
        async with session.get(f"{base}/{bad}") as r:
            assert r.status == 400, bad
    async with session.get(f"{runner[1]}/toolbox/00000000-0000-4000-8000-000000000000/tunnel/{ECHO_PORT}",
                           headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
        assert r.status == 502 and (await r.json())["code"] == "SANDBOX_NOT_RUNNING"
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{base}/{ECHO_PORT}") as r:
            assert r.status == 401


async def test_the_proxy_does_not_expose_the_tunnel(stack: Stack, sandbox_id: str):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_api_key}"}) as client:
        for path in (f"tunnel/{ECHO_PORT}", f"/tunnel/{ECHO_PORT}", "tunnel"):
            async with client.get(f"{stack.toolbox_url}/{sandbox_id}/{path}") as r:
                assert r.status == 404, path
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await client.ws_connect(f"{stack.toolbox_url}/{sandbox_id}/{path}")
