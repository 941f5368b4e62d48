"""Durable consumers and ordered followers of `MemoryBus`, with JetStream's delivery rules."""

from __future__ import annotations

import asyncio
import logging

from .background import BackgroundLoop
from .delivery import ConsumerPolicy
from .handling import Ack, DeadLetter, Publish, Retry, dead_letter, follow_one, handle
from .idle import poll_until
from .memory_store import MemoryStream, StoredMessage
from .port import Handler
from .streams import Retention

log = logging.getLogger("corral_messaging")


class Pending:
    """A delivered, not yet acked message: how often it was delivered, when it is due again."""

    __slots__ = ("num_delivered", "due")

    def __init__(self) -> None:
        self.num_delivered = 0
        self.due: float | None = None
        """Loop time of the next delivery; None while a handler holds it."""


class DurableState:
    """What the server remembers of a durable consumer across restarts of its process."""

    def __init__(self, filter_subject: str):
        self.filter_subject = filter_subject
        self.last_seq = 0
        """Highest stream sequence delivered at least once."""
        self.pending: dict[int, Pending] = {}


class MemoryConsumer:
    def __init__(self, *, stream: MemoryStream, state: DurableState, durable: str, handler: Handler,
                 policy: ConsumerPolicy, publish: Publish):
        self._stream = stream
        self._state = state
        self._durable = durable
        self._handler = handler
        self._policy = policy
        self._publish = publish
        self._loop = BackgroundLoop(f"consume {stream.spec.name}/{durable}")

    async def start(self) -> None:
        if not self._loop.running:
            self._stream.listen(self._loop.wake)
            self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()
        self._stream.unlisten(self._loop.wake)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        async def idle() -> bool:
            state = self._state
            return not state.pending and self._stream.next_after(state.last_seq, state.filter_subject) is None

        await poll_until(idle, timeout=timeout, what=self._loop.name)

    async def _run(self) -> None:
        clock = asyncio.get_running_loop().time
        while not self._loop.stopping:
            self._loop.clear()
            picked, next_due = self._pick(clock())
            if picked is None:
                await self._loop.nap(None if next_due is None else next_due - clock())
                continue
            await self._deliver(*picked)

    def _pick(self, now: float) -> tuple[tuple[StoredMessage, Pending] | None, float | None]:
        """Redeliveries that are due first (lowest sequence first), then the next new message."""
        pending = self._state.pending
        next_due: float | None = None
        for seq in sorted(pending):
            entry = pending[seq]
            if entry.due is None:
                continue
            if entry.due <= now:
                message = self._stream.get(seq)
                if message is None:
                    del pending[seq]
                    continue
                return (message, entry), None
            next_due = entry.due if next_due is None else min(next_due, entry.due)
        if len(pending) < self._policy.max_ack_pending:
            message = self._stream.next_after(self._state.last_seq, self._state.filter_subject)
            if message is not None:
                self._state.last_seq = message.seq
                entry = pending[message.seq] = Pending()
                return (message, entry), None
        return None, next_due

    async def _deliver(self, message: StoredMessage, entry: Pending) -> None:
        clock = asyncio.get_running_loop().time
        entry.num_delivered += 1
        entry.due = None
        delivery = message.delivery(self._stream.spec.name, entry.num_delivered)
        try:
            outcome = await handle(delivery, self._handler, consumer=self._durable, policy=self._policy)
        except BaseException:
            entry.due = clock() + self._policy.ack_wait  # never acked: redelivered after ack_wait
            raise
        if isinstance(outcome, Ack):
            self._settle(message.seq)
        elif isinstance(outcome, Retry):
            entry.due = clock() + outcome.delay
        elif isinstance(outcome, DeadLetter):
            try:
                await dead_letter(self._publish, delivery, stream=self._stream.spec.name,
                                  durable=self._durable, reason=outcome.reason)
            except Exception:
                log.exception("%s: dead-lettering seq=%d failed, will retry", self._loop.name, message.seq)
                entry.due = clock() + self._policy.delay_after(entry.num_delivered)
            else:
                self._settle(message.seq)

    def _settle(self, seq: int) -> None:
        self._state.pending.pop(seq, None)
        if self._stream.spec.retention is Retention.WORK_QUEUE:
            self._stream.remove(seq)


class MemoryFollower:
    def __init__(self, *, stream: MemoryStream, filter_subject: str, handler: Handler):
        self._stream = stream
        self._filter = filter_subject
        self._handler = handler
        self._last_seq = 0
        self._busy = False
        self._loop = BackgroundLoop(f"follow {stream.spec.name}/{filter_subject}")

    async def start(self) -> None:
        if not self._loop.running:
            self._stream.listen(self._loop.wake)
            self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()
        self._stream.unlisten(self._loop.wake)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        async def idle() -> bool:
            return not self._busy and self._stream.next_after(self._last_seq, self._filter) is None

        await poll_until(idle, timeout=timeout, what=self._loop.name)

    async def _run(self) -> None:
        while not self._loop.stopping:
            self._loop.clear()
            message = self._stream.next_after(self._last_seq, self._filter)
            if message is None:
                await self._loop.nap(None)
                continue
            self._busy = True
            try:
                await follow_one(message.delivery(self._stream.spec.name, 1), self._handler,
                                 follower=self._loop.name)
            finally:
                self._last_seq = message.seq
                self._busy = False
