"""Message headers: what every publish carries, and what a dead-lettered copy adds."""

from __future__ import annotations

from collections.abc import Mapping

from corral_observability import CAUSATION_ID, CORRELATION_ID, TRACEPARENT, correlation_headers, inject_headers

from .delivery import Delivery

MSG_ID = "Nats-Msg-Id"
DEAD_LETTER_REASON = "Corral-Dead-Letter-Reason"
ORIGINAL_SUBJECT = "Corral-Original-Subject"
ORIGINAL_STREAM = "Corral-Original-Stream"
ORIGINAL_SEQ = "Corral-Original-Seq"
ORIGINAL_MSG_ID = "Corral-Original-Msg-Id"
ERROR = "Corral-Error"
"""On a reply: the server failed; the value is its error text."""

_MAX_HEADER_VALUE = 1000


def publish_headers(msg_id: str, headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers a message is published with.

    Given headers win (a relay re-publishing a recorded event keeps its trace and correlation);
    otherwise `traceparent` comes from the current span and the correlation ids from the current
    handling scope. `Nats-Msg-Id` is always `msg_id`.
    """
    result = dict(headers or {})
    if TRACEPARENT not in result:
        inject_headers(result)
    for name, value in correlation_headers(msg_id).items():
        result.setdefault(name, value)
    result[MSG_ID] = msg_id
    return result


def delivery_msg_id(stream: str, stream_seq: int, headers: Mapping[str, str]) -> str:
    return headers.get(MSG_ID) or f"{stream}:{stream_seq}"


def dead_letter_msg_id(durable: str, stream_seq: int) -> str:
    return f"dlq:{durable}:{stream_seq}"


def dead_letter_headers(delivery: Delivery, *, stream: str, durable: str, reason: str) -> dict[str, str]:
    """The original headers plus why and from where the message was dead-lettered."""
    headers = dict(delivery.headers)
    headers.setdefault(CORRELATION_ID, delivery.msg_id)
    headers.setdefault(CAUSATION_ID, delivery.msg_id)
    headers[DEAD_LETTER_REASON] = header_value(reason)
    headers[ORIGINAL_SUBJECT] = delivery.subject
    headers[ORIGINAL_STREAM] = stream
    headers[ORIGINAL_SEQ] = str(delivery.stream_seq)
    headers[ORIGINAL_MSG_ID] = delivery.msg_id
    headers[MSG_ID] = dead_letter_msg_id(durable, delivery.stream_seq)
    return headers


def header_value(text: str) -> str:
    """`text` made safe for a header: one line, bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_HEADER_VALUE else flat[: _MAX_HEADER_VALUE - 3] + "..."
