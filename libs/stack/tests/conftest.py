"""Fixtures for the launcher's integration tests: a client of the session's Docker engine (`docker_url`, from
the repository plugin) and per-test container labels."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest


@pytest.fixture(scope="session")
def docker_client(docker_url: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_url)
    yield client
    client.close()


@pytest.fixture
def test_labels(docker_client: docker.DockerClient) -> Iterator[dict[str, str]]:
    """Labels for every container a test creates; whatever carries them is removed afterwards."""
    run = uuid.uuid4().hex
    yield {"corral.test": "1", "corral.test.run": run}
    for container in docker_client.containers.list(all=True, filters={"label": f"corral.test.run={run}"}):
        container.remove(force=True)
