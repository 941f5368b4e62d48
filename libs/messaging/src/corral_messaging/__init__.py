"""Corral's messaging port and its two adapters, `JetStreamBus` and `MemoryBus`, with one behaviour."""

from .delivery import ConsumerPolicy, Delivery, PublishAck
from .errors import (
    MessagingError,
    NoBucketError,
    NoRespondersError,
    NoStreamError,
    NotConnectedError,
    PoisonMessage,
    RemoteError,
    TransientError,
)
from .headers import (
    DEAD_LETTER_REASON,
    MSG_ID,
    ORIGINAL_MSG_ID,
    ORIGINAL_SEQ,
    ORIGINAL_STREAM,
    ORIGINAL_SUBJECT,
)
from .jetstream_bus import JetStreamBus
from .memory_bus import MemoryBus
from .port import Bus, Consumer, Handler, RequestHandler
from .streams import BUCKETS, STREAMS, BucketSpec, Retention, StreamSpec

__all__ = [
    "BUCKETS",
    "DEAD_LETTER_REASON",
    "MSG_ID",
    "ORIGINAL_MSG_ID",
    "ORIGINAL_SEQ",
    "ORIGINAL_STREAM",
    "ORIGINAL_SUBJECT",
    "STREAMS",
    "BucketSpec",
    "Bus",
    "Consumer",
    "ConsumerPolicy",
    "Delivery",
    "Handler",
    "JetStreamBus",
    "MemoryBus",
    "MessagingError",
    "NoBucketError",
    "NoRespondersError",
    "NoStreamError",
    "NotConnectedError",
    "PoisonMessage",
    "PublishAck",
    "RemoteError",
    "Retention",
    "StreamSpec",
    "TransientError",
]
