"""Build logs over plain chunked HTTP: what a build wrote so far, or (`follow=true`) everything until the
build ends. Builds write to the `LOGS` stream whether or not anyone reads; a reader never holds a build up."""

from __future__ import annotations

import asyncio

from aiohttp import web

from corral_contracts import codecs
from corral_contracts.snapshot_manager import BuildLogChunk
from corral_contracts.subjects import LOGS_STREAM, build_log_subject
from corral_messaging import Bus, Delivery

from ..app.directory import SandboxDirectory
from ..domain.snapshot import BUILDING

SILENCE = 1.0
"""Seconds without a chunk after which a follower looks whether the build is over."""


class BuildLogs:
    def __init__(self, bus: Bus, directory: SandboxDirectory):
        self._bus = bus
        self._directory = directory

    def _attempt(self, snapshot_id: str) -> int:
        snapshot = self._directory.snapshots.get(snapshot_id)
        return snapshot.attempt if snapshot else 0

    def _over(self, snapshot_id: str) -> bool:
        snapshot = self._directory.snapshots.get(snapshot_id)
        return snapshot is None or snapshot.state not in BUILDING

    async def respond(self, request: web.Request, snapshot_id: str, follow: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                               "Cache-Control": "no-store"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        subject = build_log_subject(snapshot_id)
        if not follow:
            for delivery in await self._bus.stream_messages(LOGS_STREAM, subject):
                chunk = codecs.build_log_chunk.decode(delivery.data)
                if chunk.attempt == self._attempt(snapshot_id) and chunk.text:
                    await response.write(chunk.text.encode())
            await response.write_eof()
            return response
        chunks: asyncio.Queue[BuildLogChunk] = asyncio.Queue()

        async def collect(delivery: Delivery) -> None:
            chunks.put_nowait(codecs.build_log_chunk.decode(delivery.data))

        follower = self._bus.follow(stream=LOGS_STREAM, filter_subject=subject, handler=collect)
        await follower.start()
        try:
            quiet = 0
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.get(), SILENCE)
                except TimeoutError:
                    quiet = quiet + 1 if self._over(snapshot_id) else 0
                    if quiet >= 2:
                        break
                    continue
                quiet = 0
                if chunk.attempt != self._attempt(snapshot_id):
                    continue
                if chunk.text:
                    await response.write(chunk.text.encode())
                if chunk.end:
                    break
        finally:
            await follower.stop()
        await response.write_eof()
        return response
