"""The contract-test fixtures: one `bus` per test, for each adapter, on unique subjects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from corral_messaging import Bus, JetStreamBus, MemoryBus
from corral_observability import configure


@pytest.fixture(scope="session", autouse=True)
def tracing() -> None:
    """Real (SDK) spans, so trace propagation is checked for real; nothing is exported."""
    configure("messaging-tests")


@pytest.fixture
def uid() -> str:
    """A unique token: subjects, durables and ids of one test never meet another test's."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(params=["memory", "jetstream"])
async def bus(request: pytest.FixtureRequest, uid: str) -> AsyncIterator[Bus]:
    if request.param == "memory":
        adapter: Bus = MemoryBus()
    else:
        server = request.getfixturevalue("nats_server")
        adapter = JetStreamBus(server.url, name=f"contract-{uid}")
    await adapter.connect()
    await adapter.ensure_streams()
    try:
        yield adapter
    finally:
        await adapter.close()
