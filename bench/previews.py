"""Preview URLs: latency of a proxied request beside the same request sent straight to the container,
and sustained requests per second through the proxy with `wrk`.

The preview app (tests/e2e/preview_app.py, a threaded stdlib server) runs in a sandbox bound to
0.0.0.0:8080, so it is reachable both through the preview (proxy -> runner -> agent tunnel ->
127.0.0.1:8080) and directly on the container's bridge address (the floor: no proxy at all).

- `preview GET /hello`: one keep-alive connection, sequential requests (host form, preview token).
- `preview WebSocket echo`: one message round trip on an open preview WebSocket.
- `preview req/s (wrk)`: `wrk -t1 -c16 -d5s`, three runs; floor: the same straight to the container.
  `wrk` comes from Debian's package, installed when missing. Load goes only to the loopback (the proxy)
  and to the bench's own sandbox container.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import docker

from corral_stack.stack import Stack

from .figures import Options, Series

APP = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "preview_app.py"
PORT = 8080
LABEL_SANDBOX = "corral.sandbox_id"


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, timeout=600)
    return shutil.which("wrk") or "wrk"


async def run(stack: Stack, options: Options) -> list[Series]:
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    latency = Series("preview GET /hello (proxy->runner->tunnel)")
    latency.floor = Series("GET /hello straight to the container")
    socket_rtt = Series("preview WebSocket echo round trip")
    socket_rtt.floor = Series("WebSocket echo straight to the container")
    rate = Series("preview req/s through the proxy (wrk)", unit="/s")
    rate.floor = Series("req/s straight to the container (wrk)", unit="/s")
    wrk = await asyncio.to_thread(ensure_wrk)
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(f"{stack.api_url}/sandbox", json={"autoStopInterval": 0}) as response:
            sandbox = await response.json()
            assert response.status == 200 and sandbox["state"] == "started", sandbox
        sandbox_id = sandbox["id"]
        try:
            address = await _start_app(http, stack, sandbox_id)
            async with http.get(f"{stack.api_url}/sandbox/{sandbox_id}/ports/{PORT}/preview-url") as response:
                token = (await response.json())["token"]
            host = f"{PORT}-{sandbox_id}.preview.localhost:{stack.config.proxy_port}"
            proxied = f"{stack.proxy_url}/hello"
            direct = f"http://{address}:{PORT}/hello"
            preview = {"Host": host, "X-Daytona-Preview-Token": token}
            async with aiohttp.ClientSession() as client:
                for _ in range(10):
                    await _get(client, proxied, preview)
                    await _get(client, direct, {})
                for _ in range(options.execs):
                    start = time.perf_counter()
                    await _get(client, proxied, preview)
                    latency.add(ms(start))
                    start = time.perf_counter()
                    await _get(client, direct, {})
                    latency.floor.add(ms(start))
                await _echo_rtt(client, f"{stack.proxy_url}/ws", preview, socket_rtt, options.execs)
                await _echo_rtt(client, f"http://{address}:{PORT}/ws", {}, socket_rtt.floor, options.execs)
            for _ in range(3):
                rate.add(await asyncio.to_thread(_wrk, wrk, proxied, preview))
                rate.floor.add(await asyncio.to_thread(_wrk, wrk, direct, {}))
        finally:
            async with http.delete(f"{stack.api_url}/sandbox/{sandbox_id}") as response:
                assert response.status == 200
    for series in (latency, socket_rtt):
        for s in (series, series.floor):
            assert s is not None
            print(f"bench:   {s.name}: p50 {s.median:.2f} ms, p99 {s.p99:.2f} ms", flush=True)
    return [latency, socket_rtt, rate]


async def _start_app(http: aiohttp.ClientSession, stack: Stack, sandbox_id: str) -> str:
    """Upload and start the app on 0.0.0.0:8080; the container's bridge address."""
    base = f"{stack.toolbox_url}/{sandbox_id}"
    form = aiohttp.FormData()
    form.add_field("files[0].path", "/tmp/preview_app.py")
    form.add_field("files[0].file", APP.read_bytes(), filename="/tmp/preview_app.py")
    async with http.post(f"{base}/files/bulk-upload", data=form) as response:
        assert response.status == 200, await response.text()
    command = f"nohup python3 /tmp/preview_app.py {PORT} 0.0.0.0 > /tmp/app.log 2>&1 < /dev/null &"
    async with http.post(f"{base}/process/execute", json={"command": command}) as response:
        assert response.status == 200, await response.text()
    deadline = time.monotonic() + 30
    while True:
        async with http.post(f"{base}/process/execute", json={"command": f"test -e /tmp/preview-app-{PORT}.ready"}) as r:
            if (await r.json())["exitCode"] == 0:
                break
        assert time.monotonic() < deadline, "the preview app did not start"
    client = docker.DockerClient(base_url=stack.docker_url)
    try:
        [container] = client.containers.list(filters={"label": f"{LABEL_SANDBOX}={sandbox_id}"})
        networks = container.attrs["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"])
    finally:
        client.close()


async def _get(client: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    async with client.get(url, headers=headers) as response:
        body = await response.read()
        assert response.status == 200 and body == b"hello from the sandbox\n", (response.status, body[:200])


async def _echo_rtt(client: aiohttp.ClientSession, url: str, headers: dict[str, str], series: Series,
                    count: int) -> None:
    async with client.ws_connect(url, headers=headers) as ws:
        for n in range(count + 10):
            start = time.perf_counter()
            await ws.send_str("ping")
            assert await ws.receive_str() == "ping"
            if n >= 10:
                series.add(ms(start))


def _wrk(wrk: str, url: str, headers: dict[str, str]) -> float:
    args = [wrk, "-t1", "-c16", "-d5s", "--timeout", "10s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, timeout=60, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    assert errors is None, output
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert found, output
    return float(found.group(1))
