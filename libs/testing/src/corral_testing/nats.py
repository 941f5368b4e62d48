"""The `nats_server` fixture: one real nats-server with JetStream per test session, on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corral_stack.nats import NatsServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A started `NatsServer` (use `.url`); its JetStream store lives in a session temp directory."""
    directory = tmp_path_factory.mktemp("nats")
    server = NatsServer(directory / "store", log_file=directory / "nats-server.log").start()
    try:
        yield server
    finally:
        server.stop()
