"""Reading every live entry of a JetStream key-value bucket, without missing one.

nats-py's `watchall()` signals "caught up" from the consumer's info when the server has already pushed
every entry but the client has not processed them yet, so on a busy machine a read could end before
the entries it was sent (a runner's heartbeat missing from a read: "no runner is available"). Here the
end is what the server says on the entries themselves: the one carrying `num_pending == 0` is the last,
and a bucket is empty only when the consumer had nothing to deliver and delivered nothing.
"""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

KV_OPERATION = "KV-Operation"
MARKER_REASON = "Nats-Marker-Reason"
"""nats-server 2.11+: a TTL or purge marker placed by the server."""
REMOVED = frozenset({"DEL", "PURGE"})


def kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def kv_prefix(bucket: str) -> str:
    return f"$KV.{bucket}."


async def read_bucket(js: JetStreamContext, bucket: str, *, timeout: float) -> dict[str, bytes]:
    """The live entries (neither deleted nor purged), key -> value. An ordered consumer of each key's
    last message; the server drops it 2 s after we stop (frequent reads must not pile consumers up)."""
    arrived: asyncio.Queue[Msg] = asyncio.Queue()
    prefix = kv_prefix(bucket)
    sub = await js.subscribe(f"{prefix}>", stream=kv_stream(bucket), cb=arrived.put, ordered_consumer=True,
                             deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, inactive_threshold=2.0)
    try:
        info = await sub.consumer_info()
        if info.num_pending == 0 and (info.delivered is None or not info.delivered.consumer_seq):
            return {}
        items: dict[str, bytes] = {}
        async with asyncio.timeout(timeout):
            while True:
                msg = await arrived.get()
                key = msg.subject[len(prefix):]
                headers = msg.header or {}
                if headers.get(KV_OPERATION) in REMOVED or MARKER_REASON in headers:
                    items.pop(key, None)
                else:
                    items[key] = msg.data or b""
                if msg.metadata.num_pending == 0:
                    return items
    finally:
        await sub.unsubscribe()
