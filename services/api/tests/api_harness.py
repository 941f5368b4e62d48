"""The api in-process through `bootstrap.build()`: the in-memory bus, a real event log (the library's
in-memory store, or SQLite), an aiohttp test client, and helpers for organizations and runner facts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from corral_api.bootstrap import Api, build
from corral_api.settings import Settings
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts.codecs import RecordedEvent
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import RUNNERS_BUCKET, event_subject
from corral_eventstore import EventLog
from corral_messaging import MemoryBus
from corral_testing.waiting import wait_for

ADMIN = "crl_" + "a" * 64


class ApiHarness:
    def __init__(self, api: Api, client: TestClient, bus: MemoryBus):
        self.api = api
        self.client = client
        self.bus = bus

    async def call(self, method: str, path: str, key: str | None = ADMIN, *, json: Any = None,
                   params: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        async with self.client.request(method, path, json=json, params=params,
                                       headers={**auth, **(headers or {})}) as response:
            raw = await response.read()
            body = await response.json() if raw and "json" in response.headers.get("Content-Type", "") else raw
            return response.status, body, response.headers

    async def organization(self, name: str | None = None, **quota: int) -> tuple[dict[str, Any], str]:
        """A new organization (and its first key's value), with a quota when given."""
        status, org, _ = await self.call("POST", "/api/organizations", json={"name": name or f"org-{uuid.uuid4().hex[:8]}"})
        assert status == 201, org
        if quota:
            status, body, _ = await self.call("PATCH", f"/api/organizations/{org['id']}/quota", json=quota)
            assert status == 200, body
        return org, org["apiKey"]["value"]

    async def key(self, owner: str, name: str, permissions: list[str], **extra: Any) -> str:
        status, body, _ = await self.call("POST", "/api/api-keys", owner,
                                          json={"name": name, "permissions": permissions, **extra})
        assert status == 201, body
        return body["value"]  # type: ignore[no-any-return]

    async def create(self, key: str = ADMIN, **body: Any) -> dict[str, Any]:
        status, sandbox, _ = await self.call("POST", "/api/sandbox", key, json=body)
        assert status == 200, sandbox
        return sandbox  # type: ignore[no-any-return]

    async def report(self, fact: rc.RunnerFact) -> None:
        envelope = EventEnvelope(event_id=f"test:{uuid.uuid4()}", aggregate_id=fact.sandbox_id,
                                 occurred_at=datetime.now(timezone.utc), payload=fact)
        await self.bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=envelope.event_id)

    async def started(self, sandbox: dict[str, Any], key: str = ADMIN) -> None:
        """Report the sandbox's container started, as its runner would, and wait until it is recorded."""
        await self.report(rc.SandboxContainerStarted(runner_id="r1", sandbox_id=sandbox["id"], container_id="c"))
        await self.wait_state(sandbox["id"], "started", key)

    async def stopped(self, sandbox: dict[str, Any], key: str = ADMIN) -> None:
        await self.report(rc.SandboxContainerStopped(runner_id="r1", sandbox_id=sandbox["id"], exit_code=0))
        await self.wait_state(sandbox["id"], "stopped", key)

    async def wait_state(self, sandbox_id: str, state: str, key: str = ADMIN) -> None:
        async def reached() -> bool:
            status, body, _ = await self.call("GET", f"/api/sandbox/{sandbox_id}", key)
            return status == 200 and body["state"] == state
        await wait_for(reached, message=f"{sandbox_id} never reached {state}")


def settings(**overrides: Any) -> Settings:
    return Settings(**{"home": "/nonexistent", "database_url": "memory://", "nats_url": "memory://",
                       "admin_api_key": ADMIN, "create_wait": 0.05, **overrides})


@asynccontextmanager
async def running_api(event_log: EventLog | None = None, **overrides: Any) -> AsyncIterator[ApiHarness]:
    bus = MemoryBus()
    api = build(settings(**overrides), bus=bus, event_log=event_log or EventLog(RecordedEvent, "memory://"))
    await bus.connect()
    await bus.ensure_streams()
    beat = rc.RunnerHeartbeat(runner_id="r1", toolbox_url="http://runner", started_at="now")
    await bus.kv_put(RUNNERS_BUCKET, "r1", codecs.encode(beat))
    client = TestClient(TestServer(api.app))
    await client.start_server()
    try:
        yield ApiHarness(api, client, bus)
    finally:
        await client.close()
