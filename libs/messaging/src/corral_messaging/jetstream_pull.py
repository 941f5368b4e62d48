"""A pull consumer's messages as they arrive, through one open pull request at a time."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger("corral_messaging")

PULL_EXPIRES = 20.0
"""Seconds a pull request stays open on the server."""
PULL_HEARTBEAT = 5.0
"""Seconds between the server's heartbeats on an open, idle pull request."""


class ConsumerGone(Exception):
    """The consumer no longer exists on the server (deleted, or lost with a restarted server)."""


class PullFeed:
    """Keeps one pull request open on a consumer and yields what it delivers, one message at a time.

    Each request gets its own reply subject, so the status answers of an abandoned request (after a
    reconnect) are told apart from the current one's; messages are accepted whichever request brought
    them (deliveries carry their original subject, so they cannot be told apart). `next()` returns None when interrupted or when the server went silent (the caller decides
    whether to check the consumer).
    """

    def __init__(self, nc: Client, stream: str, consumer: str, *, batch: int,
                 expires: float = PULL_EXPIRES, heartbeat: float = PULL_HEARTBEAT):
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._batch = batch
        self._expires = expires
        self._heartbeat = heartbeat
        self._prefix = nc.new_inbox()
        self._numbers = itertools.count(1)
        self._current = ""
        self._remaining = 0
        self._expires_at = 0.0
        self._heard_at = 0.0
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._sub: Subscription | None = None

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._prefix}.*", cb=self._received)

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("unsubscribing %s failed", self._subject, exc_info=True)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def take_queued(self) -> list[Msg]:
        """Messages received but not handed out yet (to give them back when stopping)."""
        taken = []
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            if _status(msg) is None:
                taken.append(msg)
        return taken

    def reset(self) -> None:
        """Forget the open request (it died with the connection): the next `next()` makes a new one."""
        self._remaining = 0

    async def _received(self, msg: Msg) -> None:
        self._queue.put_nowait(msg)

    async def next(self, interrupt: asyncio.Event) -> Msg | None:
        loop = asyncio.get_running_loop()
        while not interrupt.is_set():
            now = loop.time()
            if self._remaining <= 0 or now >= self._expires_at:
                await self._request(now)
            silent_until = min(self._expires_at, self._heard_at + 2 * self._heartbeat) + 1.0
            msg = await self._get(interrupt, silent_until - loop.time())
            if msg is None:
                if not interrupt.is_set() and loop.time() >= silent_until:
                    self._remaining = 0
                    return None  # silent server: let the caller check the consumer
                continue
            self._heard_at = loop.time()
            status = _status(msg)
            if status is None:
                self._remaining -= 1  # deliveries carry their own subject: count them all against this request
                return msg
            if msg.subject != self._current:
                continue  # the answer to an abandoned request
            if status == "100":
                continue
            description = _header(msg, "Description")
            if status == "503" or (status == "409" and "Consumer Deleted" in description):
                self._remaining = 0
                raise ConsumerGone(f"{self._subject}: {status} {description}".strip())
            if status not in ("404", "408", "409"):
                log.warning("%s: unexpected status %s %s", self._subject, status, description)
            self._remaining = 0  # request done (expired, batch completed, ...): make another
        return None

    async def _request(self, now: float) -> None:
        self._current = f"{self._prefix}.{next(self._numbers)}"
        request = {"batch": self._batch, "expires": int(self._expires * 1e9),
                   "idle_heartbeat": int(self._heartbeat * 1e9)}
        await self._nc.publish(self._subject, json.dumps(request).encode(), reply=self._current)
        self._remaining = self._batch
        self._expires_at = now + self._expires
        self._heard_at = now

    async def _get(self, interrupt: asyncio.Event, timeout: float) -> Msg | None:
        if not self._queue.empty():
            return self._queue.get_nowait()
        if timeout <= 0:
            return None
        get = asyncio.ensure_future(self._queue.get())
        woken = asyncio.ensure_future(interrupt.wait())
        try:
            await asyncio.wait({get, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        return None


def _status(msg: Msg) -> str | None:
    if msg.data or not msg.headers:
        return None
    return _header(msg, "Status") or None


def _header(msg: Msg, name: str) -> str:
    """A header by name; nats-py keys some status headers by a `str` enum that hashes differently."""
    for key, value in (msg.headers or {}).items():
        if getattr(key, "value", key) == name:
            return str(value).strip()
    return ""
