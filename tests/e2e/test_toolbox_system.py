"""`update_env` and `get_metrics_latest` through the official SDK, sync and async.

Metrics are measured by the runner from the host (the engine's cgroup counters and the container's
writable layer), so they must follow what the sandbox really does: memory held by a process, a busy
CPU, bytes written to disk.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from daytona import AsyncDaytona, CreateSandboxFromSnapshotParams, Daytona
from daytona.common.errors import DaytonaBadRequestError
from daytona_toolbox_api_client import ServerApi, UpdateEnvRequest
from daytona_toolbox_api_client_async import ServerApi as AsyncServerApi
from daytona_toolbox_api_client_async import UpdateEnvRequest as AsyncUpdateEnvRequest

from corral_stack.stack import Stack
from corral_testing.waiting import wait_for
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

Call = Callable[..., Awaitable[Any]]
MiB = 1024**2
GiB = 1024**3



def make_call(asynchronous: bool) -> Call:
    async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if asynchronous:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await asyncio.to_thread(method, *args, **kwargs)
    return call


async def env_scenario(sandbox: Any, call: Call, server_api: Any, request: type) -> None:
    async def echo(expression: str) -> str:
        return str((await call(sandbox.process.exec, f"printf '%s' \"{expression}\"")).result)

    await call(sandbox.update_env, {"CORRAL_A": "one two", "CORRAL_B": "$not expanded", "CORRAL_C": "c"})
    assert await echo("$CORRAL_A|$CORRAL_B|$CORRAL_C") == "one two|$not expanded|c"
    await call(sandbox.update_env, {"CORRAL_C": "again"}, unset=["CORRAL_A", "CORRAL_C", "NOT_THERE"])
    assert await echo("${CORRAL_A-unset}|$CORRAL_B|$CORRAL_C") == "unset|$not expanded|again"  # unset, then set
    code = await call(sandbox.process.code_run, "import os; print(os.environ.get('CORRAL_B'))")
    assert code.result.strip() == "$not expanded"
    await call(sandbox.update_env, {}, unset=["CORRAL_B", "CORRAL_C"])
    assert await echo("${CORRAL_B-gone}${CORRAL_C-gone}") == "gonegone"
    with pytest.raises(DaytonaBadRequestError):
        await call(sandbox.update_env, {"A=B": "no"})

    # the generated client's extra: drop every variable whose value has a prefix, unless set again
    await call(sandbox.update_env, {"SECRET_1": "placeholder:1", "SECRET_2": "placeholder:2", "KEEP": "plain"})
    answer = await call(server_api.update_env, request(set={"SECRET_2": "placeholder:new"},
                                                       unset_value_prefix="placeholder:"))
    assert answer == {}
    assert await echo("${SECRET_1-gone}|$SECRET_2|$KEEP") == "gone|placeholder:new|plain"


async def metrics_scenario(sandbox: Any, call: Call) -> None:
    async def run(command: str) -> str:
        response = await call(sandbox.process.exec, command, timeout=60)
        assert response.exit_code == 0, response.result
        return str(response.result)

    idle = await call(sandbox.get_metrics_latest)
    assert idle.cpu_count == sandbox.cpu and idle.mem_total == sandbox.memory * GiB
    assert idle.disk_total == sandbox.disk * GiB
    assert 0 < idle.mem_used < 200 * MiB and 0 <= idle.mem_cache and 0 <= idle.cpu_used_pct < 50
    assert 0 <= idle.disk_used < 50 * MiB and idle.timestamp.tzinfo is not None

    # 200 MB held by a process, then 64 MB written to the writable layer, then a busy CPU
    await run("nohup python3 -c \"import os, time; b = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(b), 4096):"
              " b[i] = 1\nopen('/tmp/held', 'w').close()\ntime.sleep(600)\" > /dev/null 2>&1 < /dev/null &")
    await wait_for(lambda: run("test -e /tmp/held && echo yes || true"), timeout=30, interval=0.1)
    holding = await call(sandbox.get_metrics_latest)
    assert holding.mem_used - idle.mem_used > 180 * MiB, (idle, holding)
    await run("pkill -f 'bytearray' ; rm -f /tmp/held")

    await run("head -c 67108864 /dev/urandom > big.bin && sync")
    written = await call(sandbox.get_metrics_latest)
    assert written.disk_used - idle.disk_used > 60 * MiB, (idle, written)

    await run("nohup timeout 30 python3 -c 'while True: pass' > /dev/null 2>&1 < /dev/null &")
    busy = await wait_for(lambda: _busy(sandbox, call), timeout=20, interval=0.1,
                          message="a spinning process never showed as CPU use")
    assert busy.cpu_used_pct <= 100
    await run("pkill -f 'while True' || true")


async def _busy(sandbox: Any, call: Call) -> Any:
    sample = await call(sandbox.get_metrics_latest)
    return sample if sample.cpu_used_pct > 50 else None


def test_env_and_metrics_through_the_sync_sdk(stack: Stack) -> None:
    daytona = Daytona(config(stack))
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(labels={"suite": "system"}), timeout=120)
    try:
        call = make_call(asynchronous=False)
        asyncio.run(env_scenario(sandbox, call, ServerApi(sandbox._toolbox_api), UpdateEnvRequest))
        asyncio.run(metrics_scenario(sandbox, call))
    finally:
        daytona.delete(sandbox, timeout=60, wait=True)


async def test_env_and_metrics_through_the_async_sdk(stack: Stack) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        sandbox = await daytona.create(CreateSandboxFromSnapshotParams(labels={"suite": "system"}), timeout=120)
        try:
            call = make_call(asynchronous=True)
            await env_scenario(sandbox, call, AsyncServerApi(sandbox._toolbox_api), AsyncUpdateEnvRequest)
            await metrics_scenario(sandbox, call)
        finally:
            await daytona.delete(sandbox, timeout=60, wait=True)
