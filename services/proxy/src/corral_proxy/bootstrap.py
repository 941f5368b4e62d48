"""The proxy's composition root: `build(settings, **overrides)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from corral_contracts import codecs
from corral_contracts.preview import PreviewWakeReply, PreviewWakeRequest
from corral_contracts.subjects import ACTIVITY_BUCKET, EVT_STREAM, PREVIEW_WAKE, RUNNERS_BUCKET, events_of
from corral_messaging import Bus, Consumer, Delivery, JetStreamBus

from .app.activity import ActivityReporter
from .app.directory import Directory
from .app.previews import PreviewGate
from .entrypoints.http import create_app
from .settings import Settings

log = logging.getLogger("corral.proxy")


class Proxy:
    def __init__(self, settings: Settings, bus: Bus):
        self.settings = settings
        self.bus = bus
        self.directory = Directory(partial(bus.kv_items, RUNNERS_BUCKET), settings.settle_wait)
        self.followers: list[Consumer] = []
        self.activity = ActivityReporter(partial(bus.kv_put, ACTIVITY_BUCKET), every=settings.activity_every)
        self.previews = PreviewGate(self.directory, self.wake, secret=settings.cookie_secret,
                                    wake_wait=settings.wake_wait, browser_wait=settings.browser_wait)
        self.app = create_app(self.directory, settings.internal_token, self.activity, self.previews,
                              preview_domain=settings.preview_domain, preview_port_wait=settings.port_wait)
        self.app.cleanup_ctx.append(self._lifespan)

    async def _apply(self, delivery: Delivery) -> None:
        await self.directory.apply(delivery.data)

    async def wake(self, sandbox_id: str, port: int) -> PreviewWakeReply:
        """Ask the api to start a sandbox whose preview was visited (it records the start)."""
        request = codecs.encode(PreviewWakeRequest(sandbox_id=sandbox_id, port=port))
        return codecs.preview_wake_reply.decode(await self.bus.request(PREVIEW_WAKE, request, timeout=10.0))

    async def _lifespan(self, app: web.Application) -> AsyncIterator[None]:
        await self.bus.connect()
        await self.bus.ensure_streams()
        self.followers = [self.bus.follow(stream=EVT_STREAM, filter_subject=events_of(aggregate), handler=self._apply)
                          for aggregate in ("sandbox", "api_key", "signed_preview_url", "organization")]
        for follower in self.followers:
            await follower.start()
        log.info("proxy ready on %s:%d", self.settings.host, self.settings.port)
        yield
        for follower in self.followers:
            await follower.stop()
        await self.bus.close()


def build(settings: Settings, *, bus: Bus | None = None) -> Proxy:
    return Proxy(settings, bus or JetStreamBus(settings.nats_url, name="corral-proxy"))
