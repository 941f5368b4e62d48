"""A durable JetStream pull consumer: one message at a time, settled after its handler returns."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from .background import BackgroundLoop
from .delivery import ConsumerPolicy, Delivery
from .handling import Ack, DeadLetter, Outcome, Publish, Retry, dead_letter, handle
from .headers import delivery_msg_id
from .idle import poll_until
from .jetstream_pull import ConsumerGone, PullFeed
from .port import Handler

log = logging.getLogger("corral_messaging")

ACK_TIMEOUT = 2.0
LOOP_API_TIMEOUT = 2.0
"""Seconds a consumer loop waits for a JetStream API answer (one lost in a restart is retried soon)."""
SETTLE_DEADLINE = 15.0
"""Seconds to keep trying to settle a message before leaving it to redelivery."""
RETRY_PAUSES = (0.1, 0.25, 0.5, 1.0, 2.0)
"""Seconds between attempts after a broken connection or a failed server call; the last repeats."""


def retry_pause(failures: int) -> float:
    return RETRY_PAUSES[min(failures, len(RETRY_PAUSES)) - 1]


def plain_headers(headers: Mapping[Any, Any] | None) -> dict[str, str]:
    """nats-py keys some headers by a `str` enum; handlers get plain strings."""
    return {str(getattr(k, "value", k)): str(v) for k, v in (headers or {}).items()}


def delivery_of(stream: str, msg: Msg) -> Delivery:
    meta = msg.metadata
    headers = plain_headers(msg.headers)
    return Delivery(
        subject=msg.subject,
        data=msg.data,
        headers=headers,
        msg_id=delivery_msg_id(stream, meta.sequence.stream, headers),
        stream_seq=meta.sequence.stream,
        num_delivered=meta.num_delivered,
    )


async def check_consumer(js: JetStreamContext, stream: str, consumer: str) -> None:
    """Raise `ConsumerGone` if the server no longer has the consumer."""
    try:
        await js.consumer_info(stream, consumer, timeout=LOOP_API_TIMEOUT)
    except NotFoundError as exc:
        raise ConsumerGone(f"{stream}/{consumer}: {exc}") from exc


class JetStreamConsumer:
    def __init__(self, *, nc: Client, js: JetStreamContext, stream: str, durable: str, filter_subject: str,
                 handler: Handler, policy: ConsumerPolicy, publish: Publish):
        self._nc = nc
        self._js = js
        self._stream = stream
        self._durable = durable
        self._filter = filter_subject
        self._handler = handler
        self._policy = policy
        self._publish = publish
        self._feed: PullFeed | None = None
        self._consumer_ready = False
        self._busy = False
        self._loop = BackgroundLoop(f"consume {stream}/{durable}")

    def config(self) -> api.ConsumerConfig:
        return api.ConsumerConfig(
            durable_name=self._durable,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self._policy.ack_wait,
            max_deliver=-1,  # dead-lettering is ours, so a crash on the last delivery loses nothing
            max_ack_pending=self._policy.max_ack_pending,
            filter_subject=self._filter,
        )

    async def start(self) -> None:
        if self._loop.running:
            return
        try:
            await self._ensure_consumer()
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
            if self._busy or (self._feed is not None and self._feed.queued):
                return False
            try:
                info = await self._js.consumer_info(self._stream, self._durable, timeout=LOOP_API_TIMEOUT)
            except Exception:
                return False
            return info.num_pending == 0 and info.num_ack_pending == 0

        await poll_until(idle, timeout=timeout, what=self._loop.name)

    async def _ensure_consumer(self) -> None:
        await self._js.add_consumer(self._stream, self.config(), timeout=LOOP_API_TIMEOUT)
        self._consumer_ready = True

    async def _run(self) -> None:
        failures = 0
        try:
            while not self._loop.stopping:
                try:
                    await self._step()
                    failures = 0
                except ConsumerGone as exc:
                    log.warning("%s: %s; re-creating it", self._loop.name, exc)
                    self._consumer_ready = False
                    failures += 1
                    await self._loop.nap(retry_pause(failures))
                except Exception:
                    failures += 1
                    log.warning("%s: error, retrying in %.2fs", self._loop.name, retry_pause(failures),
                                exc_info=True)
                    await self._loop.nap(retry_pause(failures))
        finally:
            await self._close_feed()

    async def _step(self) -> None:
        if not self._consumer_ready:
            await self._ensure_consumer()
        if self._feed is None:
            feed = PullFeed(self._nc, self._stream, self._durable, batch=1)
            await feed.open()
            self._feed = feed
        self._loop.clear()
        if self._loop.stopping:
            return
        msg = await self._feed.next(self._loop.woken)
        if msg is None:
            if not self._loop.stopping and not self._loop.woken.is_set():
                await check_consumer(self._js, self._stream, self._durable)  # silent server: still there?
            return
        await self._process(msg)

    async def _process(self, msg: Msg) -> None:
        self._busy = True
        try:
            delivery = delivery_of(self._stream, msg)
            keep_alive = asyncio.create_task(self._keep_alive(msg))
            try:
                outcome = await handle(delivery, self._handler, consumer=self._durable, policy=self._policy)
            finally:
                keep_alive.cancel()
            await self._settle(msg, delivery, outcome)
        finally:
            self._busy = False

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell the server a long handler is still working, so `ack_wait` does not redeliver."""
        while True:
            await asyncio.sleep(self._policy.ack_wait / 3)
            try:
                await msg.in_progress()
            except Exception:
                log.debug("%s: in-progress signal failed", self._loop.name, exc_info=True)

    async def _settle(self, msg: Msg, delivery: Delivery, outcome: Outcome) -> None:
        if isinstance(outcome, Ack):
            await self._reply(msg, b"+ACK")
        elif isinstance(outcome, Retry):
            await self._nak(msg, outcome.delay)
        elif isinstance(outcome, DeadLetter):
            try:
                await dead_letter(self._publish, delivery, stream=self._stream, durable=self._durable,
                                  reason=outcome.reason)
            except Exception:
                log.exception("%s: dead-lettering seq=%d failed, will retry", self._loop.name, delivery.stream_seq)
                await self._nak(msg, self._policy.delay_after(delivery.num_delivered))
            else:
                await self._reply(msg, b"+TERM")

    async def _nak(self, msg: Msg, delay: float) -> None:
        await self._reply(msg, b"-NAK " + json.dumps({"delay": int(delay * 1e9)}).encode())

    async def _reply(self, msg: Msg, payload: bytes) -> None:
        """Settle `msg` and wait until the server confirms, retrying while the consumer is unreachable
        (a reconnect, a server still loading); unconfirmed, the message comes back after `ack_wait`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_DEADLINE
        failures = 0
        while True:
            try:
                await self._nc.request(msg.reply, payload, timeout=ACK_TIMEOUT)
                return
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
                failures += 1
                if loop.time() + retry_pause(failures) >= deadline:
                    log.warning("%s: %s of seq=%d not confirmed (%s); it may be redelivered", self._loop.name,
                                payload.split(b" ")[0].decode(), msg.metadata.sequence.stream, type(exc).__name__)
                    return
                await asyncio.sleep(retry_pause(failures))

    async def _close_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is None:
            return
        for msg in feed.take_queued():  # fetched, never handled: give back for immediate redelivery
            try:
                await msg.nak()
            except Exception:
                log.debug("%s: giving back seq=%d failed", self._loop.name, msg.metadata.sequence.stream)
        await feed.close()
