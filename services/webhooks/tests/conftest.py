"""The api and the webhooks service wired through `bootstrap.build()` on the in-memory bus, the api's event
log in memory, the webhooks store in real SQLite, and a real HTTP receiver verifying every delivery with
the `standardwebhooks` library. Runner facts are reported on the bus as a runner would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from corral_api.bootstrap import Api
from corral_api.bootstrap import build as build_api
from corral_api.domain.identity import admin_key_created, key_id_for
from corral_api.settings import Settings as ApiSettings
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts.codecs import RecordedEvent
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import RUNNERS_BUCKET, event_subject
from corral_eventstore import EventLog
from corral_messaging import MemoryBus
from corral_testing.webhooks import Receiver
from corral_webhooks.bootstrap import Webhooks
from corral_webhooks.bootstrap import build as build_webhooks
from corral_webhooks.settings import Settings as WebhooksSettings

KEY = "crl_webhooks-test-key"
OTHER_KEY = "crl_other-organization-key"
OTHER_ORG = "00000000-0000-4000-8000-0000000000bb"
AUTH = {"Authorization": f"Bearer {KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


@dataclass
class Platform:
    client: TestClient
    bus: MemoryBus
    api: Api
    webhooks: Webhooks
    receiver: Receiver
    store_url: str

    async def call(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=json, headers=headers or AUTH, **kwargs)
        body = await response.read()
        return response.status, (await response.json() if body and "json" in response.content_type else body)

    async def endpoint(self, path: str, **body: Any) -> dict[str, Any]:
        status, endpoint = await self.call("POST", "/api/webhooks/endpoints", json={"url": self.receiver.url(path),
                                                                                     **body})
        assert status == 200, endpoint
        self.receiver.secrets[path] = endpoint["secret"]
        return endpoint  # type: ignore[no-any-return]

    async def report(self, fact: rc.RunnerFact) -> None:
        msg_id = f"r1:{uuid.uuid4().hex}"
        envelope = EventEnvelope(event_id=msg_id, aggregate_id=fact.sandbox_id, occurred_at=datetime.now(timezone.utc),
                                 payload=fact)
        await self.bus.publish(event_subject(fact), codecs.encode(envelope), msg_id=msg_id)


def webhooks_settings(tmp_path: Path, **overrides: Any) -> WebhooksSettings:
    return WebhooksSettings(**{"database_url": f"sqlite:///{tmp_path / 'webhooks' / 'store.db'}",
                               "nats_url": "memory://", "allow_private": True, "retry_scale": 0.001,
                               "disable_after": 3600.0, "sweep_interval": 0.2, **overrides})


@pytest.fixture
async def platform(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Platform]:
    overrides = getattr(request, "param", {})
    bus = MemoryBus()
    api_log = EventLog(RecordedEvent, "memory://")
    other = admin_key_created(OTHER_KEY, organization_id=OTHER_ORG)
    api_log.append(key_id_for(other.key_hash), 0, [other])
    api = build_api(ApiSettings(home="/nonexistent", database_url="memory://", nats_url="memory://",
                                admin_api_key=KEY, create_wait=0.2,
                                webhooks_allow_private=overrides.get("allow_private", True)),
                    bus=bus, event_log=api_log)
    settings = webhooks_settings(tmp_path, **overrides)
    webhooks = build_webhooks(settings, bus=bus)
    receiver = await Receiver().start()
    await bus.connect()
    await bus.ensure_streams()
    beat = rc.RunnerHeartbeat(runner_id="r1", toolbox_url="http://runner", started_at="now")
    await bus.kv_put(RUNNERS_BUCKET, "r1", codecs.encode(beat))
    client = TestClient(TestServer(api.app))
    await client.start_server()
    hooks = TestServer(webhooks.app)
    await hooks.start_server()
    try:
        yield Platform(client=client, bus=bus, api=api, webhooks=webhooks, receiver=receiver,
                       store_url=settings.database_url)
    finally:
        await hooks.close()
        await client.close()
        await receiver.stop()
        assert not receiver.rejected, f"deliveries failed verification: {receiver.rejected}"
