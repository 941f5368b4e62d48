"""Where to send a request: the route table (kept current by following `EVT`) and the runners' toolbox
URLs (from their heartbeats in the runners KV bucket)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from corral_contracts import codecs
from corral_contracts.preview import SignedPreviewUrlIssued

from ..domain import signing
from ..domain.routes import Grant, Route, RouteTable

RUNNER_CACHE_SECONDS = 5.0
SETTLING = ("creating", "starting", "restoring")
"""States a request waits out (briefly) rather than being refused: the sandbox is about to run."""
KEY_SETTLE_SECONDS = 1.0
"""How long a signed request whose signature does not match waits for a newer signing key."""


class Refused(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class Directory:
    def __init__(self, runner_urls: Callable[[], Awaitable[dict[str, bytes]]], settle_wait: float):
        self.table = RouteTable()
        self._runner_urls = runner_urls
        self._settle_wait = settle_wait
        self._changed = asyncio.Condition()
        self._runners: dict[str, str] = {}
        self._runners_at = 0.0

    async def apply(self, data: bytes) -> None:
        envelope = codecs.recorded_events.decode(data)
        self.table.apply(envelope.payload)
        if isinstance(envelope.payload, SignedPreviewUrlIssued):
            self.table.prune_grants(datetime.now(timezone.utc))
        async with self._changed:
            self._changed.notify_all()

    def organization_of_key(self, token: str, now: datetime | None = None) -> str | None:
        """The organization of a usable key (None for unknown, revoked and expired keys alike)."""
        key_hash = hashlib.sha256(token.encode()).hexdigest()
        expires = self.table.expiry.get(key_hash)
        if expires is not None and (now or datetime.now(timezone.utc)) >= expires:
            return None
        return self.table.keys.get(key_hash)

    def suspended(self, organization_id: str) -> bool:
        return organization_id in self.table.suspended

    async def _wait(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate),
                                       self._settle_wait if timeout is None else timeout)
                return True
            except TimeoutError:
                return False

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (bounded) until the table, as events change it, satisfies `predicate`."""
        return await self._wait(predicate, timeout)

    async def find(self, sandbox_id: str, wait: float) -> Route | None:
        """The sandbox's route; one the proxy has not heard of yet gets a short wait (its creation may be
        a few milliseconds behind the caller)."""
        table = self.table
        if sandbox_id not in table.routes:
            await self._wait(lambda: sandbox_id in table.routes, wait)
        return table.routes.get(sandbox_id)

    async def grant(self, token_hash: str, wait: float) -> Grant | None:
        """The signed preview URL with this token, waiting briefly for one issued a moment ago."""
        grants = self.table.grants
        if token_hash not in grants:
            await self._wait(lambda: token_hash in grants, wait)
        return grants.get(token_hash)

    async def route(self, sandbox_id: str, organization_id: str) -> Route:
        """The sandbox's route if it belongs to the organization and is started.

        A sandbox the proxy has not heard of yet, or one still being created or started, gets a short,
        bounded wait (the event may be a few milliseconds behind the api's answer)."""
        table = self.table
        await self._wait(lambda: sandbox_id in table.routes)
        route = table.routes.get(sandbox_id)
        if route is None or route.organization_id != organization_id:
            raise Refused(404, f"Sandbox {sandbox_id} not found", "NOT_FOUND")
        if route.state in SETTLING:
            await self._wait(lambda: route.state not in SETTLING)
        if route.state != "started":
            raise Refused(409, f"Sandbox {sandbox_id} is not started (state: {route.state})", "SANDBOX_NOT_STARTED")
        return route

    async def signed_route(self, sandbox_id: str, method: str, path: str, expires: str, signature: str,
                           now: float) -> Route:
        """The route of a sandbox reached with a signed file URL instead of an API key.

        A signature that does not match the key we know gets a short wait for a newer key (a rotation
        may be a few milliseconds ahead of us); unknown sandboxes and bad signatures look the same."""
        table = self.table
        await self._wait(lambda: sandbox_id in table.routes)
        route = table.routes.get(sandbox_id)
        if route is None:
            raise _refused(signing.invalid())
        if not signing.matches(route.signing_key, method, path, expires, signature):
            tried = route.signing_key
            await self._wait(lambda: route.signing_key != tried, KEY_SETTLE_SECONDS)
            if not signing.matches(route.signing_key, method, path, expires, signature):
                raise _refused(signing.invalid())
        try:
            signing.check_expiry(expires, now)
        except signing.SignatureRefused as refused:
            raise _refused(refused) from None
        if route.state in SETTLING:
            await self._wait(lambda: route.state not in SETTLING)
        if route.state != "started":
            raise Refused(409, f"Sandbox {sandbox_id} is not started (state: {route.state})", "SANDBOX_NOT_STARTED")
        return route

    async def runner_url(self, runner_id: str) -> str:
        if runner_id not in self._runners or time.monotonic() - self._runners_at > RUNNER_CACHE_SECONDS:
            items = await self._runner_urls()
            self._runners = {key: codecs.runner_heartbeat.decode(value).toolbox_url for key, value in items.items()}
            self._runners_at = time.monotonic()
        url = self._runners.get(runner_id)
        if url is None:
            raise Refused(502, f"Runner {runner_id} is not reachable", "RUNNER_UNAVAILABLE")
        return url


def _refused(refused: signing.SignatureRefused) -> Refused:
    return Refused(refused.status, refused.message, refused.code)
