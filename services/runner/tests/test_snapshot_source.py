"""How a runner gets a snapshot image it lacks, against the real Docker engine and the snapshot manager's
real HTTP front: copied (`docker save` there, streamed, `docker load` here) or, on the snapshot manager's
own engine, just tagged; and a captured image handed back."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import AsyncIterator

import docker
import pytest
from aiohttp.test_utils import TestServer

from corral_runner.adapters.docker_engine import DockerEngine
from corral_runner.adapters.snapshot_source import SnapshotSource
from corral_snapshot_manager.adapters.docker_images import DockerImages
from corral_snapshot_manager.entrypoints.http import create_app
from corral_testing.stack import TEST_RUN_LABEL, remove_labelled

pytestmark = pytest.mark.docker

TOKEN = "test-token"


@pytest.fixture
async def manager_url(docker_url: str) -> AsyncIterator[tuple[str, str]]:
    """A tiny labelled image, and the snapshot manager's HTTP front serving this engine's images."""
    run = os.urandom(4).hex()
    client = docker.DockerClient(base_url=docker_url)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        payload = f"snapshot {run}\n".encode()
        info = tarfile.TarInfo("marker.txt")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    ref = f"corral-snapshot:test-{run}"
    client.api.import_image_from_data(data.getvalue(), repository="corral-snapshot", tag=f"test-{run}",
                                      changes=[f"LABEL {TEST_RUN_LABEL}={run}"])
    server = TestServer(create_app(DockerImages(), TOKEN))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), ref
    finally:
        await server.close()
        remove_labelled(TEST_RUN_LABEL, run)
        client.close()


async def test_a_missing_snapshot_is_shipped_or_tagged(manager_url: tuple[str, str]) -> None:
    url, ref = manager_url
    engine = DockerEngine()
    client = docker.from_env()
    try:
        shipping = SnapshotSource(engine, manager_url=url, token=TOKEN, mode="ship")
        local = f"corral-runner-test/{ref}"
        assert not await engine.image_present(local)
        assert await shipping.fetch(ref, local) == "shipped from the snapshot manager"
        assert client.images.get(local).id == client.images.get(ref).id
        await shipping.hand_over(ref)  # docker load of the same image: accepted, nothing changes

        same_engine = SnapshotSource(engine, manager_url=url, token=TOKEN, mode="auto")
        other = f"corral-runner-other/{ref}"
        assert (await same_engine.fetch(ref, other)).startswith("tagged")
        assert client.images.get(other).id == client.images.get(ref).id

        wrong_token = SnapshotSource(engine, manager_url=url, token="nope", mode="ship")
        with pytest.raises(Exception, match="401"):
            await wrong_token.fetch(ref, f"corral-runner-denied/{ref}")
    finally:
        client.close()
        engine.close()
