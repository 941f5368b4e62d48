"""Session and interpreter round trips through the proxy, beside `docker exec` in the same run.

- `session exec echo`: a sync `POST /process/session/{id}/exec` of `echo hi` in a long-lived session
  (proxy -> runner -> agent -> the session's shell), floor: docker-py `exec_run` of `sh -c 'echo hi'`.
- `interpreter run print(1)`: one code-interpreter run over its WebSocket in the default context,
  floor: docker-py `exec_run` of `python3 -c 'print(1)'` (a fresh interpreter each time).
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import docker

from corral_stack.stack import Stack

from .figures import Options, Series

IMAGE = "corral/sandbox:default"


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(stack: Stack, options: Options) -> list[Series]:
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    client = docker.DockerClient(base_url=stack.docker_url)
    session = Series("session exec echo (proxy->runner->agent)")
    session.floor = Series("docker-py exec echo")
    interpreter = Series("interpreter run print(1) (WebSocket)")
    interpreter.floor = Series("docker-py exec python3 -c print(1)")
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.post(f"{stack.api_url}/sandbox", json={}) as response:
                sandbox = await response.json()
                assert response.status == 200 and sandbox["state"] == "started", sandbox
            sandbox_id = sandbox["id"]
            floor_container = await asyncio.to_thread(
                client.containers.run, IMAGE, ["sleep", "infinity"], detach=True, init=True, labels=options.labels,
                cap_drop=["ALL"], security_opt=["no-new-privileges:true"], mem_limit=1024**3,
                nano_cpus=1_000_000_000, pids_limit=1024)
            try:
                base = f"{stack.toolbox_url}/{sandbox_id}/process"
                async with http.post(f"{base}/session", json={"sessionId": "bench"}) as response:
                    assert response.status == 201, await response.text()
                for _ in range(5):
                    await _session_echo(http, base)
                for _ in range(options.execs):
                    start = time.perf_counter()
                    await _session_echo(http, base)
                    session.add(ms(start))
                    start = time.perf_counter()
                    await asyncio.to_thread(floor_container.exec_run, ["sh", "-c", "echo hi"])
                    session.floor.add(ms(start))
                await _run_code(http, base)  # starts the default context
                for _ in range(max(20, options.execs // 4)):
                    start = time.perf_counter()
                    await _run_code(http, base)
                    interpreter.add(ms(start))
                    start = time.perf_counter()
                    await asyncio.to_thread(floor_container.exec_run, ["python3", "-c", "print(1)"])
                    interpreter.floor.add(ms(start))
            finally:
                await asyncio.to_thread(floor_container.remove, force=True)
                async with http.delete(f"{stack.api_url}/sandbox/{sandbox_id}") as response:
                    assert response.status == 200
    finally:
        client.close()
    return [session, interpreter]


async def _session_echo(http: aiohttp.ClientSession, base: str) -> None:
    async with http.post(f"{base}/session/bench/exec", json={"command": "echo hi"}) as response:
        body = await response.json()
        assert response.status == 200 and body["exitCode"] == 0 and body["stdout"] == "hi\n", body


async def _run_code(http: aiohttp.ClientSession, base: str) -> None:
    async with http.ws_connect(f"{base}/interpreter/execute") as ws:
        await ws.send_str(json.dumps({"code": "print(1)"}))
        messages = [json.loads(m.data) async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
        assert ws.close_code == 1000 and messages[0] == {"type": "stdout", "text": "1\n"}, messages
