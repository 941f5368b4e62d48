"""The messaging port: what services need from the bus. `JetStreamBus` and `MemoryBus` implement it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from .delivery import ConsumerPolicy, Delivery, PublishAck

Handler = Callable[[Delivery], Awaitable[None]]
RequestHandler = Callable[[bytes], Awaitable[bytes]]


class Consumer(Protocol):
    async def start(self) -> None:
        """Begin handling messages in the background."""

    async def stop(self) -> None:
        """Stop gracefully: the in-flight handler finishes and its message is settled."""

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Return once every message now in the stream for this consumer has been handled.

        Raises `TimeoutError` after `timeout` seconds.
        """


class Bus(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None:
        """Stop every consumer and follower made by this bus, then disconnect."""

    async def ensure_streams(self) -> None:
        """Create or update the streams and buckets of `corral_messaging.streams`; idempotent."""

    async def publish(
        self, subject: str, data: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> PublishAck:
        """Store a message; a second publish of `msg_id` within the window is a duplicate.

        Raises `NoStreamError` when no stream stores `subject`.
        """

    def consume(
        self,
        *,
        stream: str,
        durable: str,
        filter_subject: str,
        handler: Handler,
        policy: ConsumerPolicy = ConsumerPolicy(),
    ) -> Consumer:
        """A durable consumer: one message at a time, acked after `handler` returns."""

    def follow(self, *, stream: str, filter_subject: str, handler: Handler) -> Consumer:
        """Every message from the first one, in order, without acks (to build read models)."""

    async def request(self, subject: str, data: bytes, *, timeout: float = 5.0) -> bytes: ...

    async def serve(self, subject: str, handler: RequestHandler) -> None:
        """Answer requests on `subject` (queue group "api") until the bus closes."""

    async def kv_put(self, bucket: str, key: str, value: bytes) -> None: ...

    async def kv_get(self, bucket: str, key: str) -> bytes | None: ...

    async def kv_delete(self, bucket: str, key: str) -> None: ...

    async def kv_items(self, bucket: str) -> dict[str, bytes]:
        """Live entries: neither expired nor deleted."""

    async def stream_messages(self, stream: str, filter_subject: str) -> list[Delivery]:
        """Every message stored in `stream` matching `filter_subject`, in order."""
