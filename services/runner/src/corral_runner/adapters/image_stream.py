"""`docker load` fed from an async byte stream (an HTTP download) while it arrives."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker

_END = object()


class LoadFailed(Exception):
    pass


async def load_stream(client: docker.DockerClient, chunks: AsyncIterator[bytes]) -> None:
    """Feed an async byte stream to `docker load` (which reads a sync iterable in a thread)."""
    pipe: queue.Queue[Any] = queue.Queue(maxsize=8)
    done = threading.Event()

    def feed() -> Iterator[bytes]:
        while True:
            item = pipe.get()
            if item is _END:
                return
            yield item

    def load() -> None:
        try:
            for item in client.api.load_image(feed()):
                if isinstance(item, dict) and "error" in item:
                    raise LoadFailed(f"docker load failed: {item['error']}")
        finally:
            done.set()

    worker = asyncio.ensure_future(asyncio.to_thread(load))
    try:
        async for chunk in chunks:
            while not done.is_set():
                try:
                    pipe.put_nowait(chunk)
                    break
                except queue.Full:
                    await asyncio.sleep(0.005)
            if done.is_set():
                break
        while not done.is_set():
            try:
                pipe.put_nowait(_END)
                break
            except queue.Full:
                await asyncio.sleep(0.005)
    finally:
        await asyncio.gather(worker, return_exceptions=True)
    await worker
