"""The api's whole flow through `bootstrap.build()`, with the in-memory bus and the library's in-memory
store: REST -> event -> outbox -> process manager -> runner command; runner fact -> recorded state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral_api.bootstrap import build
from corral_api.settings import Settings
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts.codecs import RecordedEvent
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import CMD_STREAM, RUNNERS_BUCKET, event_subject
from corral_eventstore import EventLog
from corral_messaging import MemoryBus
from corral_testing.waiting import wait_for

KEY = "crl_test-key"


@pytest.fixture
async def api() -> AsyncIterator[tuple[TestClient, MemoryBus]]:
    bus = MemoryBus()
    settings = Settings(home="/nonexistent", database_url="memory://", nats_url="memory://", admin_api_key=KEY,
                        create_wait=0.2)
    app = build(settings, bus=bus, event_log=EventLog(RecordedEvent, "memory://"))
    await bus.connect()
    await bus.ensure_streams()
    beat = rc.RunnerHeartbeat(runner_id="r1", toolbox_url="http://runner", started_at="now")
    await bus.kv_put(RUNNERS_BUCKET, "r1", codecs.encode(beat))
    client = TestClient(TestServer(app.app))
    await client.start_server()
    yield client, bus
    await client.close()


AUTH = {"Authorization": f"Bearer {KEY}"}


async def commands(bus: MemoryBus) -> list[rc.RunnerCommand]:
    return [codecs.runner_commands.decode(m.data).payload for m in await bus.stream_messages(CMD_STREAM, "cmd.>")]


async def report(bus: MemoryBus, fact: rc.RunnerFact, msg_id: str) -> None:
    envelope = EventEnvelope(event_id=msg_id, aggregate_id=fact.sandbox_id, occurred_at=datetime.now(timezone.utc),
                             payload=fact)
    await bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=msg_id)


async def test_create_issues_a_command_and_a_runner_fact_starts_it(api) -> None:  # type: ignore[no-untyped-def]
    client, bus = api
    response = await client.post("/api/sandbox", json={"labels": {"x": "y"}, "unknownKey": 1}, headers=AUTH)
    assert response.status == 200
    sandbox = await response.json()
    assert sandbox["state"] == "creating" and sandbox["runnerId"] == "r1"

    async def command_sent() -> bool:
        return any(isinstance(c, rc.CreateSandbox) and c.sandbox_id == sandbox["id"] for c in await commands(bus))

    await wait_for(command_sent, message="no CreateSandbox command reached CMD")
    fact = rc.SandboxContainerStarted(runner_id="r1", sandbox_id=sandbox["id"], container_id="c1")
    await report(bus, fact, "r1:test:started")
    await report(bus, fact, "r1:test:started-again")  # at-least-once: a repeat records nothing

    async def started() -> bool:
        got = await (await client.get(f"/api/sandbox/{sandbox['id']}", headers=AUTH)).json()
        return bool(got["state"] == "started")

    await wait_for(started, message="the runner's fact was not recorded")
    events = await (await client.get(f"/api/sandbox/{sandbox['id']}/events", headers=AUTH)).json()
    assert [e["type"] for e in events["items"]] == ["SandboxCreated", "SandboxStarted"]

    response = await client.post(f"/api/sandbox/{sandbox['id']}/stop", headers=AUTH)
    assert (await response.json())["state"] == "stopping"

    async def stop_sent() -> bool:
        return any(isinstance(c, rc.StopSandbox) for c in await commands(bus))

    await wait_for(stop_sent, message="no StopSandbox command reached CMD")


async def test_bad_input_is_a_json_4xx(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    assert (await client.get("/api/sandbox")).status == 401
    response = await client.post("/api/sandbox", json={"env": {"A": 1}}, headers=AUTH)
    body = await response.json()
    assert response.status == 400 and body["statusCode"] == 400 and body["code"] == "VALIDATION_ERROR"
    response = await client.post("/api/sandbox", data=b"[", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == 400
    response = await client.get("/api/sandbox/nope", headers=AUTH)
    assert response.status == 404 and (await response.json())["code"] == "NOT_FOUND"
    response = await client.post("/api/sandbox", json={"snapshot": "no-such-snapshot"}, headers=AUTH)
    assert response.status == 404


async def test_a_destroyed_sandbox_cannot_be_started(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    sandbox = await (await client.post("/api/sandbox", json={}, headers=AUTH)).json()
    assert (await client.delete(f"/api/sandbox/{sandbox['id']}", headers=AUTH)).status == 200
    response = await client.post(f"/api/sandbox/{sandbox['id']}/start", headers=AUTH)
    assert response.status == 409 and (await response.json())["code"] == "INVALID_STATE"
