"""A real webhook receiver for tests: an aiohttp server on a free port that verifies every delivery with
the `standardwebhooks` library (as a customer's receiver would) and counts what it got.

Each endpoint is a path (`receiver.url("a")`); give it the endpoint's secret (`receiver.secrets["a"]`)
and, if wanted, a behaviour: a status to answer per attempt, or a gate that holds answers back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from corral_stack.ports import free_port


@dataclass(frozen=True)
class Received:
    path: str
    webhook_id: str
    payload: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    """Exactly as received (what the signature covers)."""
    at: float
    """`time.time()` when it arrived."""


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    secrets: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, Callable[[int], int]] = field(default_factory=dict)
    """Path -> (how many deliveries this path got so far, this one included) -> the status to answer."""
    received: list[Received] = field(default_factory=list)
    """Every verified delivery, in arrival order (repeats included)."""
    rejected: list[str] = field(default_factory=list)
    """Why a request failed verification (a test expects this to stay empty)."""
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    """Answers wait while the gate is closed (open by default)."""
    held: int = 0
    """Requests waiting at the closed gate."""
    port: int = 0
    _runner: web.AppRunner | None = None
    _counts: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path}"

    async def start(self) -> "Receiver":
        self.gate.set()
        app = web.Application()
        app.router.add_post("/{path}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port(self.host)
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        headers = dict(request.headers)
        secret = self.secrets.get(path)
        if secret is None:
            return web.Response(status=503, text="unknown endpoint (yet)")
        try:
            payload = Webhook(secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as error:
            self.rejected.append(f"{path}: {type(error).__name__}: {error}")
            return web.Response(status=400, text="bad signature")
        self.received.append(Received(path=path, webhook_id=headers["webhook-id"], payload=payload,
                                      headers=headers, body=body, at=time.time()))
        count = self._counts[path] = self._counts.get(path, 0) + 1
        if not self.gate.is_set():
            self.held += 1
            try:
                await self.gate.wait()
            finally:
                self.held -= 1
        status = self.statuses[path](count) if path in self.statuses else 200
        return web.Response(status=status, text=f"answered {status}")

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def unique(self, path: str) -> dict[str, Received]:
        """Deliveries at `path` by webhook-id (repeats collapsed)."""
        return {r.webhook_id: r for r in self.at(path)}
