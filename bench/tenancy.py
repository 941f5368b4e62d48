"""What tenancy costs a request: the audit middleware (one event per mutating call, group-committed to
SQLite before the answer) measured A/B on the api in-process, with and without it, on a real SQLite
store; and the access middleware's share (key lookup, permission, rate-limit counters) on a read.

In-process (the in-memory bus, an aiohttp test server on loopback) so the difference is the api's own
work, not Docker's or the network's. `PUT /sandbox/{id}/labels` is the mutating call: cheap enough
that the audit write is a visible fraction of it.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from corral_api.bootstrap import build
from corral_api.settings import Settings
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts.codecs import RecordedEvent
from corral_contracts.subjects import RUNNERS_BUCKET
from corral_eventstore import EventLog
from corral_messaging import MemoryBus
from corral_stack.stack import Stack

from .figures import Options, Series

KEY = "crl_" + "b" * 64
AUTH = {"Authorization": f"Bearer {KEY}"}


async def run(stack: Stack, options: Options) -> list[Series]:
    calls = max(200, options.execs)
    audited, plain = Series("PUT labels, audited (in-process, SQLite)"), Series("PUT labels, not audited")
    burst = Series("20 concurrent PUT labels (20 sandboxes), audited")
    burst_plain = Series("20 concurrent PUT labels, not audited")
    read = Series("GET sandbox (access checks, no audit)")
    for auditing, one, many in ((False, plain, burst_plain), (True, audited, burst)):
        with tempfile.TemporaryDirectory(prefix="corral-bench-") as home:
            await _measure(Path(home), auditing, calls, one, many, read if auditing else None)
    audited.floor, burst.floor = plain, burst_plain
    return [audited, burst, read]


async def _measure(home: Path, auditing: bool, calls: int, one: Series, many: Series, read: Series | None) -> None:
    url = f"sqlite:///{home / 'events.db'}"
    settings = Settings(home=str(home), database_url=url, nats_url="memory://", admin_api_key=KEY, create_wait=0.01)
    bus = MemoryBus()
    api = build(settings, bus=bus, event_log=EventLog(RecordedEvent, url), auditing=auditing)
    await bus.connect()
    await bus.ensure_streams()
    await bus.kv_put(RUNNERS_BUCKET, "r1", codecs.encode(rc.RunnerHeartbeat(runner_id="r1", toolbox_url="http://r",
                                                                           started_at="now")))
    client = TestClient(TestServer(api.app))
    await client.start_server()
    try:
        sandboxes = []
        for _ in range(20):
            async with client.post("/api/sandbox", json={}, headers=AUTH) as response:
                sandboxes.append((await response.json())["id"])
        sandbox = sandboxes[0]
        path = f"/api/sandbox/{sandbox}/labels"
        for i in range(calls + 20):
            start = time.perf_counter()
            async with client.put(path, json={"labels": {"n": str(i)}}, headers=AUTH) as response:
                assert response.status == 200, await response.text()
            if i >= 20:
                one.add((time.perf_counter() - start) * 1000)
        for round_ in range(max(10, calls // 20)):
            start = time.perf_counter()
            await asyncio.gather(*(_put(client, f"/api/sandbox/{s}/labels", str(round_)) for s in sandboxes))
            many.add((time.perf_counter() - start) * 1000)
        if read is not None:
            for _ in range(calls):
                start = time.perf_counter()
                async with client.get(f"/api/sandbox/{sandbox}", headers=AUTH) as response:
                    assert response.status == 200
                read.add((time.perf_counter() - start) * 1000)
    finally:
        await client.close()


async def _put(client: TestClient, path: str, value: str) -> None:
    async with client.put(path, json={"labels": {"n": value}}, headers=AUTH) as response:
        assert response.status == 200, await response.text()
