"""`JetStreamBus`: the messaging port on NATS JetStream (nats-py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue

from corral_observability import inject_headers

from .delivery import ConsumerPolicy, Delivery, PublishAck
from .errors import NoBucketError, NoRespondersError, NoStreamError, NotConnectedError
from .headers import delivery_msg_id, publish_headers
from .jetstream_consumer import JetStreamConsumer, plain_headers, retry_pause
from .jetstream_follower import JetStreamFollower
from .jetstream_kv import read_bucket
from .jetstream_setup import ensure_streams
from .port import Consumer, Handler, RequestHandler
from .replies import SERVE_QUEUE_GROUP, answer, reply_payload
from .streams import check_followable, check_key, stream_for_subject, stream_named

log = logging.getLogger("corral_messaging")

KV_READ_REUSE = 0.1
"""Seconds a bucket read serves later `kv_items` calls of the same bus (each read costs a consumer)."""

API_TIMEOUT = 5.0
PUBLISH_ATTEMPT_TIMEOUT = 2.0


class JetStreamBus:
    """One NATS connection that reconnects forever (a fixed, short wait between attempts).

    `connect()` returns once a server answers, however long that takes (wrap it in a timeout to
    bound it). A publish whose acknowledgement is lost to a reconnect is retried with the same
    `Nats-Msg-Id`, so it is stored once, until `publish_timeout` seconds have passed.
    """

    def __init__(self, servers: str | list[str], name: str, *, replicas: int = 1,
                 publish_timeout: float = 15.0, reconnect_wait: float = 0.5):
        self._servers = [servers] if isinstance(servers, str) else list(servers)
        self._name = name
        self._replicas = replicas
        self._publish_timeout = publish_timeout
        self._reconnect_wait = reconnect_wait
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._consumers: list[JetStreamConsumer | JetStreamFollower] = []
        self._buckets: dict[str, KeyValue] = {}
        self._kv_reads: dict[str, tuple[asyncio.Future[dict[str, bytes]], float]] = {}
        self._replies: set[asyncio.Task[None]] = set()
        self._closing = False

    async def connect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            return
        self._closing = False
        self._nc = await nats.connect(
            self._servers, name=self._name, allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=self._reconnect_wait, connect_timeout=2,
            error_cb=self._on_error, disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
        )
        self._js = self._nc.jetstream(timeout=API_TIMEOUT)

    async def close(self) -> None:
        self._closing = True
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()
        nc, self._nc, self._js = self._nc, None, None
        self._buckets.clear()
        if nc is not None and not nc.is_closed:
            await nc.close()

    async def ensure_streams(self) -> None:
        await ensure_streams(self._jetstream(), replicas=self._replicas)

    async def publish(
        self, subject: str, data: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> PublishAck:
        js = self._jetstream()
        spec = stream_for_subject(subject)
        if spec is None:
            raise NoStreamError(f"no stream stores subject {subject!r}")
        sent = publish_headers(msg_id, headers)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        failures = 0
        while True:
            try:
                ack = await js.publish(subject, data, headers=dict(sent), timeout=PUBLISH_ATTEMPT_TIMEOUT)
                return PublishAck(stream=ack.stream, seq=ack.seq, duplicate=bool(ack.duplicate))
            except NoStreamResponseError:
                if await self._stream_missing(spec.name):
                    raise NoStreamError(f"stream {spec.name} for {subject!r} does not exist (streams ensured?)")
            except (nats.errors.TimeoutError, ServiceUnavailableError) as exc:
                log.info("publish to %s not acknowledged yet (%s), retrying", subject, type(exc).__name__)
            failures += 1
            if loop.time() + retry_pause(failures) >= deadline:
                raise TimeoutError(f"publish to {subject!r} not acknowledged within {self._publish_timeout}s")
            await asyncio.sleep(retry_pause(failures))

    async def _stream_missing(self, stream: str) -> bool:
        try:
            await self._jetstream().stream_info(stream)
        except NotFoundError:
            return True
        except Exception:
            return False  # JetStream unavailable for now: retry
        return False

    def consume(
        self,
        *,
        stream: str,
        durable: str,
        filter_subject: str,
        handler: Handler,
        policy: ConsumerPolicy = ConsumerPolicy(),
    ) -> Consumer:
        nc = self._client()
        stream_named(stream)
        consumer = JetStreamConsumer(nc=nc, js=self._jetstream(), stream=stream, durable=durable,
                                     filter_subject=filter_subject, handler=handler, policy=policy,
                                     publish=self.publish)
        self._consumers.append(consumer)
        return consumer

    def follow(self, *, stream: str, filter_subject: str, handler: Handler) -> Consumer:
        nc = self._client()
        check_followable(stream)
        follower = JetStreamFollower(nc=nc, js=self._jetstream(), stream=stream,
                                     filter_subject=filter_subject, handler=handler)
        self._consumers.append(follower)
        return follower

    async def request(self, subject: str, data: bytes, *, timeout: float = 5.0) -> bytes:
        try:
            reply = await self._client().request(subject, data, timeout=timeout, headers=inject_headers({}))
        except nats.errors.NoRespondersError:
            raise NoRespondersError(f"nobody serves {subject!r}") from None
        except nats.errors.TimeoutError:
            raise TimeoutError(f"no reply on {subject!r} within {timeout}s") from None
        return reply_payload(subject, reply.data, reply.headers)

    async def serve(self, subject: str, handler: RequestHandler) -> None:
        nc = self._client()

        async def on_request(msg: Msg) -> None:  # answer concurrently: a slow request blocks no other
            task = asyncio.create_task(self._answer(nc, msg, handler))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)

        await nc.subscribe(subject, queue=SERVE_QUEUE_GROUP, cb=on_request)  # ends with the connection

    async def _answer(self, nc: Client, msg: Msg, handler: RequestHandler) -> None:
        payload, headers = await answer(handler, msg.subject, msg.data, msg.headers or {})
        if msg.reply:
            try:
                await nc.publish(msg.reply, payload, headers=headers or None)
            except Exception:
                log.warning("cannot reply to a request on %s", msg.subject, exc_info=True)

    async def kv_put(self, bucket: str, key: str, value: bytes) -> None:
        await (await self._bucket(bucket)).put(check_key(key), value)
        self._kv_reads.pop(bucket, None)

    async def kv_get(self, bucket: str, key: str) -> bytes | None:
        try:
            entry = await (await self._bucket(bucket)).get(check_key(key))
        except KeyNotFoundError:
            return None
        return entry.value or b""

    async def kv_delete(self, bucket: str, key: str) -> None:
        await (await self._bucket(bucket)).delete(check_key(key))
        self._kv_reads.pop(bucket, None)

    async def kv_items(self, bucket: str) -> dict[str, bytes]:
        """Concurrent callers share one read, and a read is reused for `KV_READ_REUSE` seconds unless
        this bus wrote to the bucket since: every read costs the server a consumer."""
        cached = self._kv_reads.get(bucket)
        now = time.monotonic()
        if cached is not None and (not cached[0].done() or now - cached[1] < KV_READ_REUSE):
            return dict(await asyncio.shield(cached[0]))
        read = asyncio.ensure_future(self._kv_read(bucket))
        self._kv_reads[bucket] = (read, now)
        try:
            return dict(await asyncio.shield(read))
        except BaseException:
            self._kv_reads.pop(bucket, None)
            raise

    async def _kv_read(self, bucket: str) -> dict[str, bytes]:
        await self._bucket(bucket)  # NoBucketError when it does not exist
        return await read_bucket(self._jetstream(), bucket, timeout=API_TIMEOUT)

    async def stream_messages(self, stream: str, filter_subject: str) -> list[Delivery]:
        js = self._jetstream()
        found: list[Delivery] = []
        seq = 1
        while True:
            try:
                raw = await js.get_msg(stream, seq=seq, subject=filter_subject, next=True)
            except NotFoundError:
                return found
            headers = plain_headers(raw.headers)
            assert raw.subject is not None and raw.seq is not None
            found.append(Delivery(subject=raw.subject, data=raw.data or b"", headers=headers,
                                  msg_id=delivery_msg_id(stream, raw.seq, headers), stream_seq=raw.seq,
                                  num_delivered=1))
            seq = raw.seq + 1

    async def _bucket(self, name: str) -> KeyValue:
        bucket = self._buckets.get(name)
        if bucket is None:
            try:
                bucket = self._buckets[name] = await self._jetstream().key_value(name)
            except BucketNotFoundError:
                raise NoBucketError(f"no bucket {name!r} (streams ensured?)") from None
        return bucket

    def _client(self) -> Client:
        if self._nc is None or self._nc.is_closed:
            raise NotConnectedError(f"JetStreamBus {self._name}: connect() first")
        return self._nc

    def _jetstream(self) -> JetStreamContext:
        self._client()
        assert self._js is not None
        return self._js

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats %s: %s: %s", self._name, type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("nats %s: disconnected, reconnecting", self._name)

    async def _on_reconnected(self) -> None:
        log.warning("nats %s: reconnected", self._name)
        for consumer in self._consumers:
            consumer.on_reconnected()
