"""The Docker engine of the test session: the reachable one, or one started as `make test` would."""

from __future__ import annotations

import pytest

from corral_stack.docker_engine import ensure_docker


@pytest.fixture(scope="session")
def docker_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_docker(tmp_path_factory.mktemp("corral-home"))
