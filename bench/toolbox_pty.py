"""PTY benchmarks: keystroke echo latency, and opening a terminal until a first command has printed.

Through Corral: a WebSocket to the proxy's `/process/pty/create-connect` (proxy -> runner -> agent ->
the PTY). The floor: the same with docker-py in the same run, `exec` with `tty=True` and
`socket=True` in a plain container of the same image. In both terminals `stty raw -echo; exec cat`
runs, so one byte written comes back as one byte (cat's echo): the time from writing it to reading
it back is the echo latency a user feels at a prompt.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import aiohttp
import docker

from corral_stack.stack import Stack

from .figures import Options, Series

IMAGE = "corral/sandbox:default"
CAT = "stty raw -echo; printf RE''ADY; exec cat"
KEYS = b"abcdefghijklmnopqrstuvwxyz"


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(stack: Stack, options: Options) -> list[Series]:
    echo = Series("PTY keystroke echo (proxy->runner->agent)")
    echo.floor = Series("docker-py exec tty=True socket echo")
    ready = Series("PTY open + first command's output")
    ready.floor = Series("docker-py exec tty=True, same command")
    keystrokes = max(50, options.execs)
    client = docker.DockerClient(base_url=stack.docker_url)
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    container = None
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            sandbox_id = await _create(http, stack)
            container = await asyncio.to_thread(_floor_container, client, options.labels)
            url = f"{stack.toolbox_url}/{sandbox_id}/process/pty/create-connect"
            for i in range(max(10, options.creates)):
                start = time.perf_counter()
                ws = await http.ws_connect(url, params={"id": f"ready-{i}"})
                await _start_cat(ws)
                ready.add(ms(start))
                await ws.close()
                await _kill(http, stack, sandbox_id, f"ready-{i}")
                ready.floor.add(await asyncio.to_thread(_docker_exec_ready_ms, client, container))
            async with http.ws_connect(url, params={"id": "echo"}) as ws:
                await _start_cat(ws)
                for i in range(keystrokes + 10):
                    key = KEYS[i % len(KEYS):][:1]
                    start = time.perf_counter()
                    await ws.send_bytes(key)
                    await _receive_echo(ws, key)
                    if i >= 10:  # warm-up
                        echo.add(ms(start))
            echo.floor.samples += await asyncio.to_thread(_docker_exec_echo_ms, client, container, keystrokes)
            await _delete(http, stack, sandbox_id)
    finally:
        if container is not None:
            await asyncio.to_thread(container.remove, force=True)
        client.close()
    return [echo, ready]


async def _start_cat(ws: aiohttp.ClientWebSocketResponse) -> None:
    assert json.loads(await ws.receive_str(timeout=10))["status"] == "connected"
    await ws.send_bytes(CAT.encode() + b"\n")
    seen = b""
    while b"READY" not in seen:
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.BINARY, message
        seen += message.data


async def _receive_echo(ws: aiohttp.ClientWebSocketResponse, key: bytes) -> None:
    while True:
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.BINARY, message
        if message.data.endswith(key):
            return


def _floor_container(client: docker.DockerClient, labels: dict[str, str]):  # type: ignore[no-untyped-def]
    container = client.containers.create(IMAGE, command=["sleep", "infinity"], init=True, labels=labels,
                                         user="daytona", cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
    container.start()
    return container


def _docker_exec_sock(client: docker.DockerClient, container) -> socket.socket:  # type: ignore[no-untyped-def]
    exec_id = client.api.exec_create(container.id, ["sh", "-c", CAT], tty=True, stdin=True)["Id"]
    stream = client.api.exec_start(exec_id, tty=True, socket=True)
    return stream._sock  # type: ignore[no-any-return]  # the raw connection: with a tty, no stream framing


def _docker_exec_ready_ms(client: docker.DockerClient, container) -> float:  # type: ignore[no-untyped-def]
    """From exec create to the first output of the terminal (its READY)."""
    start = time.perf_counter()
    sock = _docker_exec_sock(client, container)
    try:
        _read_until(sock, b"READY")
        return ms(start)
    finally:
        sock.close()


def _docker_exec_echo_ms(client: docker.DockerClient, container, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    sock = _docker_exec_sock(client, container)
    samples = []
    try:
        _read_until(sock, b"READY")
        for i in range(count + 10):
            key = KEYS[i % len(KEYS):][:1]
            start = time.perf_counter()
            sock.sendall(key)
            _read_until(sock, key)
            if i >= 10:
                samples.append(ms(start))
    finally:
        sock.close()
    return samples


def _read_until(sock: socket.socket, marker: bytes) -> None:
    sock.settimeout(10)
    seen = b""
    while not seen.endswith(marker):
        chunk = sock.recv(4096)
        assert chunk, f"the exec ended before {marker!r}: {seen!r}"
        seen += chunk


async def _create(http: aiohttp.ClientSession, stack: Stack) -> str:
    async with http.post(f"{stack.api_url}/sandbox", json={"labels": {"bench": os.urandom(3).hex()}}) as response:
        body = await response.json()
        assert response.status == 200 and body["state"] == "started", body
        return str(body["id"])


async def _kill(http: aiohttp.ClientSession, stack: Stack, sandbox_id: str, pty: str) -> None:
    async with http.delete(f"{stack.toolbox_url}/{sandbox_id}/process/pty/{pty}") as response:
        assert response.status == 200, await response.text()


async def _delete(http: aiohttp.ClientSession, stack: Stack, sandbox_id: str) -> None:
    async with http.delete(f"{stack.api_url}/sandbox/{sandbox_id}") as response:
        assert response.status == 200
