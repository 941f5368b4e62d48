"""The webhooks service's composition root: `build(settings, **overrides)` wires every piece."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from corral_contracts import codecs
from corral_contracts import webhooks as wh
from corral_contracts.subjects import (
    DISABLE_WEBHOOK_ENDPOINT, EVT_STREAM, EVT_SUBJECTS, WEBHOOK_DELIVERIES, WEBHOOK_REPLAY, WEBHOOK_SEND_TEST,
)
from corral_messaging import Bus, Consumer, ConsumerPolicy, JetStreamBus

from .adapters.http_sender import HttpSender
from .adapters.store import WebhookStore
from .app.desk import Desk
from .app.fanout import Fanout
from .app.journal import Journal
from .app.ports import Sender, Store
from .app.scheduler import Scheduler
from .domain.ledger import Ledger
from .domain.schedule import RetryPolicy
from .entrypoints.consumer import EventFeed
from .entrypoints.http import create_app
from .entrypoints.rpc import DeskServer
from .settings import Settings

log = logging.getLogger("corral.webhooks")

DURABLE = "webhooks"
IN_ORDER = ConsumerPolicy(ack_wait=30.0, max_ack_pending=1, max_deliver=1_000_000, backoff=(0.2, 1.0, 5.0, 30.0))
"""Platform events one at a time, in stream order. A failing one (the store unavailable) is retried for as
long as it takes, never dead-lettered: an event given up would be a webhook lost. An undecodable one
(a poison message) is dead-lettered at once."""


class Webhooks:
    def __init__(self, settings: Settings, bus: Bus, store: Store, sender: Sender | None = None):
        self.settings = settings
        self.bus = bus
        self.store = store
        self.ledger = Ledger()
        self.journal = Journal(store, self.ledger)
        self.http = HttpSender(allow_private=settings.allow_private, timeout=settings.timeout,
                               connections=max(settings.concurrency, 10))
        self.policy = RetryPolicy(scale=settings.retry_scale, disable_after=settings.disable_after)
        self.scheduler = Scheduler(self.journal, sender or self.http, self.policy,
                                   request_disable=self.request_disable, concurrency=settings.concurrency,
                                   sweep_interval=settings.sweep_interval)
        self.feed = EventFeed(Fanout(self.journal))
        self.desk = DeskServer(Desk(self.journal))
        self.consumer: Consumer | None = None
        self.app = create_app(self.status)
        self.app.cleanup_ctx.append(self._lifespan)

    def status(self) -> dict[str, Any]:
        return {"tracked": self.ledger.tracked, "storePosition": self.ledger.position,
                "endpoints": len(self.ledger.endpoints), "deliveries": len(self.ledger.deliveries),
                "pending": self.ledger.pending, "attempts": self.scheduler.attempts, "handled": self.feed.handled}

    async def request_disable(self, request: wh.DisableEndpointRequest) -> bool:
        reply = await self.bus.request(DISABLE_WEBHOOK_ENDPOINT, codecs.encode(request), timeout=10.0)
        return codecs.disable_endpoint_reply.decode(reply).disabled

    async def start(self) -> None:
        await self.journal.open()
        await self.http.start()
        await self.bus.connect()
        await self.bus.ensure_streams()
        self.scheduler.start()
        await self.bus.serve(WEBHOOK_DELIVERIES, self.desk.deliveries)
        await self.bus.serve(WEBHOOK_REPLAY, self.desk.replay)
        await self.bus.serve(WEBHOOK_SEND_TEST, self.desk.send_test)
        self.consumer = self.bus.consume(stream=EVT_STREAM, durable=DURABLE, filter_subject=EVT_SUBJECTS,
                                         handler=self.feed.handle, policy=IN_ORDER)
        await self.consumer.start()
        log.info("webhooks ready: %d endpoints, %d deliveries (%d pending), platform events up to %d",
                 len(self.ledger.endpoints), len(self.ledger.deliveries), self.ledger.pending, self.ledger.tracked)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        await self.scheduler.stop()
        await self.journal.close()
        await self.bus.close()
        await self.http.stop()

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.stop()


def build(settings: Settings, *, bus: Bus | None = None, store: Store | None = None,
          sender: Sender | None = None) -> Webhooks:
    return Webhooks(settings, bus or JetStreamBus(settings.nats_url, name="corral-webhooks"),
                    store or WebhookStore(settings.database_url), sender)


__all__ = ["Webhooks", "build"]
