"""The ssh-gateway's composition root: `build(settings, **overrides)`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from functools import partial

import asyncssh

from corral_contracts.subjects import ACTIVITY_BUCKET, RUNNERS_BUCKET
from corral_messaging import Bus, JetStreamBus

from .adapters.api_desk import BusDesk
from .adapters.host_key import load_or_create
from .adapters.runner_link import RunnerLink
from .adapters.ssh_server import GatewayServer, listen
from .app.access import Gatekeeper
from .app.ports import AccessDesk, SandboxLink
from .app.sessions import Sessions
from .domain.backoff import Backoff
from .settings import Settings

log = logging.getLogger("corral.ssh_gateway")


class Gateway:
    def __init__(self, settings: Settings, bus: Bus, desk: AccessDesk | None = None,
                 link: SandboxLink | None = None):
        self.settings = settings
        self.bus = bus
        self.desk = desk or BusDesk(bus)
        self.link = link or RunnerLink(partial(bus.kv_get, RUNNERS_BUCKET), settings.internal_token)
        self.backoff = Backoff(free=settings.failures_free, base=settings.failure_delay,
                               cap=settings.failure_delay_max, window=settings.failure_window)
        self.gatekeeper = Gatekeeper(self.desk, self.backoff, gateway_id=settings.gateway_id,
                                     wake_wait=settings.wake_wait)
        self.sessions = Sessions(self.desk, self.report_activity, activity_every=settings.activity_every,
                                 check_every=settings.check_every)
        self.acceptor: asyncssh.SSHAcceptor | None = None

    async def report_activity(self, sandbox_id: str) -> None:
        await self.bus.kv_put(ACTIVITY_BUCKET, sandbox_id, datetime.now(timezone.utc).isoformat().encode())

    def _server(self) -> GatewayServer:
        return GatewayServer(self.gatekeeper, self.sessions, self.link)

    async def start(self) -> None:
        key = await asyncio.to_thread(load_or_create, self.settings.host_key_path)
        await self.bus.connect()
        await self.bus.ensure_streams()
        self.sessions.start()
        self.acceptor = await listen(self.settings.host, self.settings.port, key, self._server,
                                     self.settings.login_timeout)
        log.info("ssh-gateway listening on %s:%d (host key %s)", self.settings.host, self.settings.port,
                 key.get_fingerprint())

    async def stop(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
            await self.acceptor.wait_closed()
        await self.sessions.stop()
        await self.link.close()
        await self.bus.close()


def build(settings: Settings, *, bus: Bus | None = None, desk: AccessDesk | None = None,
          link: SandboxLink | None = None) -> Gateway:
    return Gateway(settings, bus or JetStreamBus(settings.nats_url, name="corral-ssh-gateway"), desk, link)


__all__ = ["Gateway", "build"]
