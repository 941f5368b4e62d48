"""`docker save` read and `docker load` fed as async byte streams (docker-py is synchronous: its calls run
in threads, with a small bounded queue between the event loop and the loader)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker

CHUNK = 1024 * 1024
_END = object()
_ABORT = object()


class LoadFailed(Exception):
    pass


async def load_stream(client: docker.DockerClient, chunks: AsyncIterator[bytes]) -> None:
    """Feed an async byte stream to `docker load` (which reads a sync iterable in a thread); LoadFailed
    when the engine refuses the archive."""
    pipe: queue.Queue[Any] = queue.Queue(maxsize=8)
    done = threading.Event()

    def feed() -> Iterator[bytes]:
        while True:
            item = pipe.get()
            if item is _END:
                return
            if item is _ABORT:
                raise LoadFailed("the image stream broke off")
            yield item

    def load() -> None:
        try:
            for item in client.api.load_image(feed()):
                if isinstance(item, dict) and "error" in item:
                    raise LoadFailed(f"docker load failed: {item['error']}")
        finally:
            done.set()

    def last(item: object) -> None:
        """Make the loader's next read `item`, whatever it has not read yet (it is dropped)."""
        while True:
            try:
                pipe.put_nowait(item)
                return
            except queue.Full:
                try:
                    pipe.get_nowait()
                except queue.Empty:
                    pass

    async def put(item: object) -> None:
        """Queue `item` for the loader, waiting while the queue is full; nothing once the loader has ended."""
        while not done.is_set():
            try:
                pipe.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)

    worker = asyncio.ensure_future(asyncio.to_thread(load))
    try:
        async for chunk in chunks:
            if done.is_set():
                break  # the loader ended early (the engine refused the archive): its error says why
            await put(chunk)
        await put(_END)
    except BaseException:
        if not done.is_set():
            last(_ABORT)  # the source broke off: the loader is told, and the load fails
        raise
    finally:
        await asyncio.shield(asyncio.gather(worker, return_exceptions=True))
    await worker


async def save_stream(client: docker.DockerClient, ref: str) -> AsyncIterator[bytes]:
    """`docker save` of one image, chunk by chunk (docker.errors.ImageNotFound when it is not there). The
    archive names `ref`, so the engine that loads it has the image under that name too."""
    chunks: Iterator[bytes] = await asyncio.to_thread(
        lambda: iter(client.images.get(ref).save(CHUNK, named=False if ref.startswith("sha256:") else ref)))
    while True:
        chunk = await asyncio.to_thread(next, chunks, None)
        if chunk is None:
            return
        yield chunk
