"""Delivering from the store: every delivery with an attempt due is attempted (a bounded number at once),
each attempt recorded with its outcome and, after a failure, when the next one is due. Retries hours
away are in the store, not in a message held unacked; after a restart the ledger tells what is due.

An endpoint whose every attempt has failed for long enough is reported to the api, which disables it
(and records why); its pending deliveries then end as failed, and nothing new is sent to it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from corral_api.domain.webhook_endpoint import WebhookEndpoint
from corral_contracts import webhooks as wh
from corral_eventstore import ConcurrencyConflict, utcnow

from ..domain import signing
from ..domain.catalog import iso
from ..domain.ledger import DeliveryState, Health
from ..domain.schedule import RetryPolicy
from .journal import Journal, key
from .ports import AttemptResult, Sender

log = logging.getLogger(__name__)

RequestDisable = Callable[[wh.DisableEndpointRequest], Awaitable[bool]]


class Scheduler:
    def __init__(self, journal: Journal, sender: Sender, policy: RetryPolicy, *, request_disable: RequestDisable,
                 concurrency: int = 64, sweep_interval: float = 30.0, clock: Callable[[], datetime] = utcnow,
                 rand: Callable[[], float] = random.random):
        self._journal = journal
        self._ledger = journal.ledger
        self._sender = sender
        self._policy = policy
        self._request_disable = request_disable
        self._sweep_interval = sweep_interval
        self._clock = clock
        self._rand = rand
        self._heap: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._asked: dict[str, int] = {}
        """Endpoint id -> the version whose disabling was asked (not asked again until it changes)."""
        self.attempts = 0
        self._ledger.due.append(self.due)
        self._ledger.endpoint_changed.append(self.endpoint_changed)

    # --- queue ---------------------------------------------------------------------------------

    def due(self, delivery: DeliveryState) -> None:
        if delivery.next_attempt_at is not None:
            heapq.heappush(self._heap, (delivery.next_attempt_at, next(self._order), delivery.delivery_id))
            self._wake.set()

    def endpoint_changed(self, endpoint_id: str) -> None:
        """An endpoint disabled or deleted: its pending deliveries end now rather than at their next retry."""
        endpoint = self._ledger.endpoint(endpoint_id)
        if endpoint is not None and endpoint.enabled and not endpoint.deleted:
            return
        now = self._clock()
        for delivery in self._ledger.pending_of(endpoint_id):
            heapq.heappush(self._heap, (now, next(self._order), delivery.delivery_id))
        self._wake.set()

    def start(self) -> None:
        for delivery in self._ledger.deliveries.values():
            if delivery.status == "pending":
                self.due(delivery)
        self._loop_task = asyncio.create_task(self._run(), name="webhook-scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None

    async def _run(self) -> None:
        next_sweep = asyncio.get_running_loop().time() + self._sweep_interval
        while True:
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                _, _, delivery_id = heapq.heappop(self._heap)
                if delivery_id not in self._inflight:
                    self._inflight.add(delivery_id)
                    task = asyncio.create_task(self._attempt(delivery_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            if asyncio.get_running_loop().time() >= next_sweep:
                self.sweep()
                next_sweep = asyncio.get_running_loop().time() + self._sweep_interval
            wait = self._sweep_interval
            if self._heap:
                wait = min(wait, max(0.0, (self._heap[0][0] - self._clock()).total_seconds()))
            self._wake.clear()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass

    # --- one attempt ---------------------------------------------------------------------------

    async def _attempt(self, delivery_id: str) -> None:
        retry_at: datetime | None = None
        try:
            async with self._slots:
                await self._attempt_now(delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("attempt of %s failed; trying it again shortly", delivery_id)
            retry_at = self._clock() + timedelta(seconds=1)
        finally:
            self._inflight.discard(delivery_id)
        delivery = self._ledger.deliveries.get(delivery_id)
        if delivery is not None and delivery.status == "pending" and delivery.next_attempt_at is not None:
            # due again (a retry, a replay) while this attempt was in flight: queue it now
            due = max(delivery.next_attempt_at, retry_at) if retry_at else delivery.next_attempt_at
            heapq.heappush(self._heap, (due, next(self._order), delivery_id))
            self._wake.set()

    async def _attempt_now(self, delivery_id: str) -> None:
        delivery = self._ledger.deliveries[delivery_id]
        if delivery.status != "pending":
            return  # settled meanwhile: a stale queue entry
        endpoint = self._ledger.endpoint(delivery.endpoint_id)
        if endpoint is None or endpoint.deleted:
            await self._record(delivery_id, lambda d: wh.WebhookDeliveryAbandoned(
                delivery_id=d.delivery_id, reason="the endpoint was deleted", at=self._clock()))
            return
        if not endpoint.enabled:
            why = f"disabled by the platform: {endpoint.disabled_reason}" if endpoint.disabled_reason else \
                "disabled by its owner"
            await self._record(delivery_id, lambda d: wh.WebhookDeliveryAbandoned(
                delivery_id=d.delivery_id, reason=f"the endpoint was {why}", at=self._clock()))
            return
        if delivery.next_attempt_at is None or delivery.next_attempt_at > self._clock():
            return  # rescheduled meanwhile: a stale queue entry
        body = delivery.body.encode()
        at = self._clock()
        headers = signing.headers(endpoint.signing_secrets(at), delivery_id, int(at.timestamp()), body)
        headers["content-type"] = "application/json"
        result: AttemptResult = await self._sender.send(endpoint.url, headers, body)
        self.attempts += 1

        def attempted(d: DeliveryState) -> wh.WebhookDeliveryAttempted:
            failures = d.failures_in_round + (0 if result.succeeded else 1)
            return wh.WebhookDeliveryAttempted(
                delivery_id=d.delivery_id, attempt=len(d.attempts) + 1, url=endpoint.url, at=at,
                succeeded=result.succeeded, status_code=result.status_code, latency_ms=result.latency_ms,
                response=result.response, error=result.error,
                next_attempt_at=None if result.succeeded else self._policy.next_attempt(failures, self._clock(),
                                                                                          self._rand()))

        await self._record(delivery_id, attempted)
        if not result.succeeded:
            self._judge(endpoint)

    async def _record(self, delivery_id: str, make: Callable[[DeliveryState], Any]) -> None:
        for _ in range(10):
            delivery = self._ledger.deliveries[delivery_id]
            try:
                await self._journal.write([(key("delivery", delivery_id), delivery.version, [make(delivery)])])
                return
            except ConcurrencyConflict:
                await self._journal.catch_up()  # replayed meanwhile: record on top of it
        raise ConcurrencyConflict(f"could not record the attempt of {delivery_id}")

    # --- endpoints that keep failing -------------------------------------------------------------

    def sweep(self) -> None:
        """Judge every failing endpoint (also those whose disabling could not be asked before)."""
        for endpoint_id in list(self._ledger.health):
            endpoint = self._ledger.endpoint(endpoint_id)
            if endpoint is not None:
                self._judge(endpoint)

    def _judge(self, endpoint: WebhookEndpoint) -> None:
        health = self._ledger.health.get(endpoint.id)
        if health is None or not endpoint.enabled or endpoint.deleted or self._asked.get(endpoint.id) == endpoint.version:
            return
        if not self._policy.should_disable(health.failing_since, self._clock()):
            return
        self._asked[endpoint.id] = endpoint.version
        task = asyncio.create_task(self._disable(endpoint, health))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _disable(self, endpoint: WebhookEndpoint, health: Health) -> None:
        assert health.failing_since is not None
        reason = (f"every delivery attempt failed since {iso(health.failing_since)} ({health.failures} attempts); "
                  f"the last: {health.last_error}")
        request = wh.DisableEndpointRequest(endpoint_id=endpoint.id, organization_id=endpoint.organization_id,
                                            endpoint_version=endpoint.version, reason=reason,
                                            failing_since=health.failing_since)
        try:
            disabled = await self._request_disable(request)
            log.warning("endpoint %s kept failing: %s (%s)", endpoint.id, reason,
                        "disabled" if disabled else "changed meanwhile, left alone")
        except Exception as error:
            log.warning("could not ask the api to disable endpoint %s (%s); will ask again", endpoint.id, error)
            self._asked.pop(endpoint.id, None)
