"""The outbox relay: every recorded event reaches `EVT` exactly once.

The relay tails the notification log from its tracking position, publishes each event with
`Nats-Msg-Id = "n<notification id>"` (so a re-publish after a crash between publish and tracking is
dropped by JetStream's duplicate window), then records the new position. Killed at any point, it
resumes from the tracking position and nothing is lost or repeated on the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from corral_contracts.codecs import encode
from corral_contracts.envelope import EventEnvelope
from corral_contracts.subjects import event_subject

from .log import EventLog
from .mapper import Recorded
from .tailing import LogTail


Publish = Callable[..., Awaitable[object]]

TRACKING_NAME = "outbox-evt"


def envelope_of(notification_id: int, event: Recorded) -> EventEnvelope:  # type: ignore[type-arg]
    return EventEnvelope(
        event_id=f"n{notification_id}",
        aggregate_id=str(event.originator_id),
        aggregate_version=event.originator_version,
        sequence=notification_id,
        occurred_at=event.timestamp,
        meta=event.meta,
        payload=event.payload,
    )


def trace_headers(meta: Mapping[str, str]) -> dict[str, str]:
    """The trace and correlation headers recorded with an event travel on with it."""
    return {k: v for k, v in meta.items() if k in ("traceparent", "tracestate")
            or k.startswith("Corral-")}


class OutboxRelay:
    def __init__(self, event_log: EventLog, publish: Publish, *, batch: int = 256, poll_interval: float = 1.0):
        self._log = event_log
        self._publish = publish
        self._batch = batch
        self._tail = LogTail("outbox-relay", self._relay_batch, poll_interval=poll_interval)
        self.position = 0
        self._progress = asyncio.Condition()

    def notify(self) -> None:
        """Something was recorded: relay it now rather than at the next poll."""
        self._tail.notify()

    async def resume(self) -> int:
        """Take up the tracking position: where a previous relay (perhaps killed) stopped."""
        self.position = await asyncio.to_thread(self._log.tracked, TRACKING_NAME)
        return self.position

    async def start(self) -> None:
        await self.resume()
        self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()

    async def wait_published(self, notification_id: int, timeout: float = 10.0) -> None:
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: self.position >= notification_id), timeout)

    async def relay_once(self) -> int:
        """Publish one batch; returns how many events were published."""
        page = await asyncio.to_thread(self._log.notifications, self.position, self._batch)
        for notification in page:
            event = self._log.decode(notification)
            envelope = envelope_of(notification.id, event)
            await self._publish(event_subject(event.payload), encode(envelope), msg_id=envelope.event_id,
                                headers=trace_headers(event.meta))
        if page:
            last = page[-1].id
            await asyncio.to_thread(self._log.track, TRACKING_NAME, last)
            async with self._progress:
                self.position = last
                self._progress.notify_all()
        return len(page)

    async def _relay_batch(self) -> bool:
        return await self.relay_once() == self._batch
