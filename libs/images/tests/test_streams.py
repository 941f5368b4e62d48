"""Images through `save_stream` and `load_stream` against the real Docker engine: a round trip keeps the
image, and an archive the engine refuses is a LoadFailed, not a hang."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
from collections.abc import AsyncIterator, Iterator

import docker
import pytest

from corral_images import LoadFailed, load_stream, save_stream

pytestmark = pytest.mark.docker


@pytest.fixture
def client(docker_url: str) -> Iterator[docker.DockerClient]:
    found = docker.DockerClient(base_url=docker_url)
    yield found
    found.close()


@pytest.fixture
def image(client: docker.DockerClient) -> Iterator[str]:
    ref = f"corral-images-test:{os.urandom(4).hex()}"
    payload = os.urandom(3 * 1024 * 1024)  # more than one chunk
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("payload")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    repository, tag = ref.split(":")
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)
    yield ref
    try:
        client.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


async def test_an_image_saved_as_a_stream_loads_back_the_same(client: docker.DockerClient, image: str) -> None:
    before = client.images.get(image).id
    chunks = [chunk async for chunk in save_stream(client, image)]
    assert len(chunks) > 1 and sum(map(len, chunks)) > 3 * 1024 * 1024
    client.images.remove(image, force=True)

    async def replay() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    await load_stream(client, replay())
    assert client.images.get(image).id == before


async def test_an_archive_the_engine_refuses_is_a_load_failure(client: docker.DockerClient) -> None:
    async def garbage() -> AsyncIterator[bytes]:
        yield b"this is not an image archive" * 1000

    with pytest.raises((LoadFailed, docker.errors.APIError)):
        await load_stream(client, garbage())


async def test_a_source_that_breaks_off_fails_the_load_instead_of_hanging(client: docker.DockerClient,
                                                                         image: str) -> None:
    """The sender went away mid-image (a runner restarted during a ship): the load ends with its error and no
    thread is left waiting for the rest."""
    chunks = [chunk async for chunk in save_stream(client, image)]
    client.images.remove(image, force=True)

    async def broken_off() -> AsyncIterator[bytes]:
        yield chunks[0]
        raise ConnectionResetError("the sender went away")

    async with asyncio.timeout(60) as guard:
        with pytest.raises(ConnectionResetError):
            await load_stream(client, broken_off())
    assert not guard.expired(), "the load waited for the rest of the stream"
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image)
