"""`MemoryBus`: the messaging port in pure asyncio, no sockets, same semantics as `JetStreamBus`."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Mapping

from corral_observability import inject_headers

from .delivery import ConsumerPolicy, Delivery, PublishAck
from .errors import NoBucketError, NoRespondersError, NoStreamError, NotConnectedError
from .headers import publish_headers
from .memory_consumers import DurableState, MemoryConsumer, MemoryFollower
from .memory_store import Clock, MemoryBucket, MemoryStream
from .port import Consumer, Handler, RequestHandler
from .replies import answer, reply_payload
from .streams import (
    BUCKETS,
    STREAMS,
    check_followable,
    check_key,
    stream_for_subject,
    stream_named,
    subject_matches,
)

log = logging.getLogger("corral_messaging")


class MemoryBus:
    """Streams, consumers, key-value buckets and request/reply inside one process.

    `clock` (seconds, monotonic) drives de-duplication windows and key-value TTLs, so tests can move
    time; redelivery backoffs run on the event loop's clock, so tests use small ones.
    """

    def __init__(self, *, clock: Clock = time.monotonic):
        self._clock = clock
        self._connected = False
        self._streams: dict[str, MemoryStream] = {}
        self._buckets: dict[str, MemoryBucket] = {}
        self._durables: dict[tuple[str, str], DurableState] = {}
        self._servers: list[tuple[str, RequestHandler]] = []
        self._turn = itertools.count()
        self._consumers: list[MemoryConsumer | MemoryFollower] = []
        self._replies: set[asyncio.Task[tuple[bytes, dict[str, str]]]] = set()

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()
        self._servers.clear()
        self._connected = False

    async def ensure_streams(self) -> None:
        self._check()
        for spec in STREAMS:
            stream = self._streams.get(spec.name)
            if stream is None:
                self._streams[spec.name] = MemoryStream(spec, self._clock)
            else:
                stream.spec = spec
        for bucket in BUCKETS:
            self._buckets.setdefault(bucket.name, MemoryBucket(bucket, self._clock))

    async def publish(
        self, subject: str, data: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> PublishAck:
        self._check()
        spec = stream_for_subject(subject)
        stream = self._streams.get(spec.name) if spec else None
        if stream is None:
            raise NoStreamError(f"no stream stores subject {subject!r} (streams ensured?)")
        return stream.append(subject, data, publish_headers(msg_id, headers), msg_id)

    def consume(
        self,
        *,
        stream: str,
        durable: str,
        filter_subject: str,
        handler: Handler,
        policy: ConsumerPolicy = ConsumerPolicy(),
    ) -> Consumer:
        self._check()
        stream_named(stream)
        state = self._durables.get((stream, durable))
        if state is None or state.filter_subject != filter_subject:
            previous = state
            state = self._durables[(stream, durable)] = DurableState(filter_subject)
            if previous is not None:  # a changed filter keeps the position, like a consumer update
                state.last_seq, state.pending = previous.last_seq, previous.pending
        consumer = MemoryConsumer(stream=self._stream(stream), state=state, durable=durable,
                                  handler=handler, policy=policy, publish=self.publish)
        self._consumers.append(consumer)
        return consumer

    def follow(self, *, stream: str, filter_subject: str, handler: Handler) -> Consumer:
        self._check()
        check_followable(stream)
        follower = MemoryFollower(stream=self._stream(stream), filter_subject=filter_subject, handler=handler)
        self._consumers.append(follower)
        return follower

    async def request(self, subject: str, data: bytes, *, timeout: float = 5.0) -> bytes:
        self._check()
        servers = [handler for pattern, handler in self._servers if subject_matches(pattern, subject)]
        if not servers:
            raise NoRespondersError(f"nobody serves {subject!r}")
        handler = servers[next(self._turn) % len(servers)]  # a queue group: one of them answers
        reply = asyncio.create_task(answer(handler, subject, data, inject_headers({})))
        self._replies.add(reply)
        reply.add_done_callback(self._replies.discard)
        try:
            async with asyncio.timeout(timeout):
                payload, headers = await asyncio.shield(reply)
        except TimeoutError:
            raise TimeoutError(f"no reply on {subject!r} within {timeout}s") from None
        return reply_payload(subject, payload, headers)

    async def serve(self, subject: str, handler: RequestHandler) -> None:
        self._check()
        self._servers.append((subject, handler))

    async def kv_put(self, bucket: str, key: str, value: bytes) -> None:
        self._bucket(bucket).put(check_key(key), value)

    async def kv_get(self, bucket: str, key: str) -> bytes | None:
        return self._bucket(bucket).get(check_key(key))

    async def kv_delete(self, bucket: str, key: str) -> None:
        self._bucket(bucket).delete(check_key(key))

    async def kv_items(self, bucket: str) -> dict[str, bytes]:
        return self._bucket(bucket).items()

    async def stream_messages(self, stream: str, filter_subject: str) -> list[Delivery]:
        self._check()
        return [m.delivery(stream, 1) for m in self._stream(stream).matching(filter_subject)]

    def _stream(self, name: str) -> MemoryStream:
        stream = self._streams.get(name)
        if stream is None:
            raise NoStreamError(f"no stream {name!r} (streams ensured?)")
        return stream

    def _bucket(self, name: str) -> MemoryBucket:
        self._check()
        bucket = self._buckets.get(name)
        if bucket is None:
            raise NoBucketError(f"no bucket {name!r} (streams ensured?)")
        return bucket

    def _check(self) -> None:
        if not self._connected:
            raise NotConnectedError("MemoryBus: connect() first")
