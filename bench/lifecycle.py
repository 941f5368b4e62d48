"""The issue-2 benchmarks: create -> started, execute `echo`, code-run `print(1)`, agent idle RSS.

Each is measured through Corral (REST, proxy -> runner -> agent) and beside it the same operation
done directly with docker-py in the same run: create+start a container, `exec` in it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import docker

from corral_stack.stack import Stack

from .figures import Options, Series

IMAGE = "corral/sandbox:default"


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def run(stack: Stack, options: Options) -> list[Series]:
    return await run_all(stack, creates=options.creates, execs=options.execs, labels=options.labels)


async def run_all(stack: Stack, *, creates: int, execs: int, labels: dict[str, str]) -> list[Series]:
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    client = docker.DockerClient(base_url=stack.docker_url)
    create = Series("create -> started (REST, cold)", budget=400)
    create.floor = Series("docker-py create+start")
    execute = Series("process/execute echo (proxy->runner->agent)", budget=10)
    execute.floor = Series("docker-py exec echo")
    code = Series("process/code-run print(1)", budget=40)
    code.floor = Series("docker-py exec python3 -c print(1)")
    rss = Series("agent idle RSS", unit="MB", budget=15)
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            sandbox_id = await _create(http, stack)  # warm-up, and the sandbox used for execs
            for _ in range(creates):
                start = time.perf_counter()
                sid = await _create(http, stack)
                create.add(ms(start))
                await _delete(http, stack, sid)
                start = time.perf_counter()
                container = await asyncio.to_thread(_docker_create_start, client, labels)
                create.floor.add(ms(start))
                await asyncio.to_thread(container.remove, force=True)
            floor_container = await asyncio.to_thread(_docker_create_start, client, labels)
            url = f"{stack.toolbox_url}/{sandbox_id}/process"
            for _ in range(5):
                await _post(http, f"{url}/execute", {"command": "echo hi"})
            for _ in range(execs):
                start = time.perf_counter()
                await _post(http, f"{url}/execute", {"command": "echo hi"})
                execute.add(ms(start))
                start = time.perf_counter()
                await asyncio.to_thread(floor_container.exec_run, ["sh", "-c", "echo hi"])
                execute.floor.add(ms(start))
            for _ in range(max(20, execs // 4)):
                start = time.perf_counter()
                await _post(http, f"{url}/code-run", {"code": "print(1)", "language": "python"})
                code.add(ms(start))
                start = time.perf_counter()
                await asyncio.to_thread(floor_container.exec_run, ["python3", "-c", "print(1)"])
                code.floor.add(ms(start))
            await asyncio.to_thread(floor_container.remove, force=True)
            rss.add(_agent_rss_mb(client, sandbox_id))
            await _delete(http, stack, sandbox_id)
    finally:
        client.close()
    return [create, execute, code, rss]


async def _create(http: aiohttp.ClientSession, stack: Stack) -> str:
    async with http.post(f"{stack.api_url}/sandbox", json={}) as response:
        body = await response.json()
        assert response.status == 200 and body["state"] == "started", body
        return str(body["id"])


async def _delete(http: aiohttp.ClientSession, stack: Stack, sandbox_id: str) -> None:
    async with http.delete(f"{stack.api_url}/sandbox/{sandbox_id}") as response:
        assert response.status == 200


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, object]) -> None:
    async with http.post(url, json=body) as response:
        payload = await response.json()
        assert response.status == 200 and payload["exitCode"] == 0, payload


def _docker_create_start(client: docker.DockerClient, labels: dict[str, str]):  # type: ignore[no-untyped-def]
    container = client.containers.create(IMAGE, command=["sleep", "infinity"], init=True, labels=labels,
                                         cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
                                         mem_limit=1024**3, nano_cpus=1_000_000_000, pids_limit=1024)
    container.start()
    return container


def _agent_rss_mb(client: docker.DockerClient, sandbox_id: str) -> float:
    """Resident memory of the agent process of an idle sandbox, read from the host's /proc."""
    container = client.containers.get(f"corral-{sandbox_id}")
    top = container.top(ps_args="-eo pid,args")
    pids = [int(row[0]) for row in top["Processes"] if row[-1].startswith("python3") and "corral-agent.pyz" in row[-1]]
    status = Path(f"/proc/{pids[0]}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024
