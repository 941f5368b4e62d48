"""An ordered JetStream follower: every message from the first, in order, re-created after a restart."""

from __future__ import annotations

import asyncio
import logging
import uuid

from nats.aio.client import Client
from nats.js import JetStreamContext, api

from .background import BackgroundLoop
from .handling import follow_one
from .idle import poll_until
from .jetstream_consumer import LOOP_API_TIMEOUT, check_consumer, delivery_of, retry_pause
from .jetstream_pull import ConsumerGone, PullFeed
from .port import Handler

log = logging.getLogger("corral_messaging")

FOLLOW_BATCH = 256
INACTIVE_THRESHOLD = 60.0
"""Seconds after which the server drops a follower consumer nobody pulls from (its process died)."""


class JetStreamFollower:
    """An ephemeral, memory-stored, ack-less consumer that this class keeps ordered itself.

    It remembers the last stream sequence it handled; on a gap, a vanished consumer (a restarted
    server) or a silent server it drops the consumer and creates a new one starting right after it.
    """

    def __init__(self, *, nc: Client, js: JetStreamContext, stream: str, filter_subject: str, handler: Handler):
        self._nc = nc
        self._js = js
        self._stream = stream
        self._filter = filter_subject
        self._handler = handler
        self._last_seq = 0
        self._expected = 1
        """Consumer sequence expected next from the current consumer (earlier ones are handled or in hand)."""
        self._name = ""
        self._feed: PullFeed | None = None
        self._busy = False
        self._loop = BackgroundLoop(f"follow {stream}/{filter_subject}")

    async def start(self) -> None:
        if self._loop.running:
            return
        try:
            await self._create()
        except Exception:
            log.warning("%s: cannot create the consumer yet, will keep trying", self._loop.name, exc_info=True)
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    def on_reconnected(self) -> None:
        if self._feed is not None:
            self._feed.reset()
        self._loop.wake()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        async def idle() -> bool:
            if self._busy or self._feed is None or self._feed.queued:
                return False
            try:
                info = await self._js.consumer_info(self._stream, self._name, timeout=LOOP_API_TIMEOUT)
            except Exception:
                return False
            return info.num_pending == 0 and (info.delivered.consumer_seq or 0) < self._expected

        await poll_until(idle, timeout=timeout, what=self._loop.name)

    def _config(self, name: str) -> api.ConsumerConfig:
        start = self._last_seq + 1
        return api.ConsumerConfig(
            name=name,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE if start > 1 else api.DeliverPolicy.ALL,
            opt_start_seq=start if start > 1 else None,
            ack_policy=api.AckPolicy.NONE,
            filter_subject=self._filter,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=INACTIVE_THRESHOLD,
        )

    async def _create(self) -> None:
        await self._drop(delete=True)
        name = f"follow_{uuid.uuid4().hex}"
        await self._js.add_consumer(self._stream, self._config(name), timeout=LOOP_API_TIMEOUT)
        feed = PullFeed(self._nc, self._stream, name, batch=FOLLOW_BATCH)
        await feed.open()
        self._name, self._feed, self._expected = name, feed, 1

    async def _drop(self, *, delete: bool) -> None:
        feed, self._feed = self._feed, None
        if feed is None:
            return
        await feed.close()
        if delete:
            try:
                await asyncio.wait_for(self._js.delete_consumer(self._stream, self._name), 1.0)
            except Exception:
                log.debug("%s: deleting %s failed (it expires on its own)", self._loop.name, self._name)

    async def _run(self) -> None:
        failures = 0
        try:
            while not self._loop.stopping:
                try:
                    await self._step()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    level = logging.INFO if isinstance(exc, ConsumerGone) else logging.WARNING
                    log.log(level, "%s: %s; re-creating from seq %d in %.2fs", self._loop.name, exc or type(exc),
                            self._last_seq + 1, retry_pause(failures), exc_info=level > logging.INFO)
                    await self._drop(delete=False)
                    await self._loop.nap(retry_pause(failures))
        finally:
            await self._drop(delete=True)

    async def _step(self) -> None:
        if self._feed is None:
            await self._create()
        assert self._feed is not None
        self._loop.clear()
        if self._loop.stopping:
            return
        msg = await self._feed.next(self._loop.woken)
        if msg is None:
            if not self._loop.stopping and not self._loop.woken.is_set():
                await check_consumer(self._js, self._stream, self._name)
            return
        sequence = msg.metadata.sequence
        if sequence.stream <= self._last_seq:
            return  # already handled (a late message of a dropped consumer)
        if sequence.consumer != self._expected:
            raise ConsumerGone(f"gap: consumer seq {sequence.consumer}, expected {self._expected}")
        self._expected += 1
        self._busy = True
        try:
            await follow_one(delivery_of(self._stream, msg), self._handler, follower=self._loop.name)
        finally:
            self._last_seq = sequence.stream
            self._busy = False
