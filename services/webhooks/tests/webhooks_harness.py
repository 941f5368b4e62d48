"""Harness of the webhooks tests: the api and the webhooks service wired through `bootstrap.build()` on the in-memory bus, the api's event
log in memory, the webhooks store in real SQLite, and a real HTTP receiver verifying every delivery with
the `standardwebhooks` library. Runner facts are reported on the bus as a runner would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from corral_api.bootstrap import Api
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import event_subject
from corral_messaging import MemoryBus
from corral_testing.webhooks import Receiver
from corral_webhooks.bootstrap import Webhooks
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
