"""Fixtures of the webhooks service's tests (the harness is in `webhooks_harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from webhooks_harness import KEY, OTHER_KEY, OTHER_ORG, Platform, webhooks_settings

from corral_api.bootstrap import build as build_api
from corral_api.domain.identity import ALL_PERMISSIONS, key_created, key_id_for
from corral_api.settings import Settings as ApiSettings
from corral_contracts import codecs
from corral_contracts import runner as rc
from corral_contracts.codecs import RecordedEvent
from corral_contracts.subjects import RUNNERS_BUCKET
from corral_eventstore import EventLog
from corral_messaging import MemoryBus
from corral_testing.webhooks import Receiver
from corral_webhooks.bootstrap import build as build_webhooks


@pytest.fixture
async def platform(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Platform]:
    overrides = getattr(request, "param", {})
    bus = MemoryBus()
    api_log = EventLog(RecordedEvent, "memory://")
    other = key_created(OTHER_KEY, organization_id=OTHER_ORG, name="other", permissions=ALL_PERMISSIONS)
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
