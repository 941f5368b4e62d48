"""Running a handler on a delivery and deciding what happens to the message: one rule for both buses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Protocol
import msgspec

from corral_contracts.subjects import dead_letter_subject
from corral_observability import handling_scope, span_from_headers

from .delivery import ConsumerPolicy, Delivery, PublishAck
from .errors import PoisonMessage, TransientError
from .headers import dead_letter_headers, dead_letter_msg_id, header_value
from .port import Handler

log = logging.getLogger("corral_messaging")

class Ack(msgspec.Struct, frozen=True):
    """The handler returned: its effect is committed."""


class Retry(msgspec.Struct, frozen=True):
    delay: float


class DeadLetter(msgspec.Struct, frozen=True):
    reason: str


Outcome = Ack | Retry | DeadLetter


async def handle(delivery: Delivery, handler: Handler, *, consumer: str, policy: ConsumerPolicy) -> Outcome:
    """Run `handler` in the message's trace and correlation scope; never raises for a handler failure.

    Handler returns -> `Ack`; `PoisonMessage` -> `DeadLetter` at once; any other exception -> `Retry`
    with the policy's backoff, or `DeadLetter` once the delivery count has reached `max_deliver`.
    """
    where = f"{consumer} seq={delivery.stream_seq} subject={delivery.subject} msg_id={delivery.msg_id}"
    with span_from_headers(f"{consumer} process", delivery.headers) as span, handling_scope(
        delivery.headers, delivery.msg_id
    ):
        span.set_attribute("messaging.destination.name", delivery.subject)
        span.set_attribute("messaging.message.id", delivery.msg_id)
        try:
            await handler(delivery)
            return Ack()
        except PoisonMessage as exc:
            span.record_exception(exc)
            log.error("poison message, dead-lettering: %s: %s", where, exc, exc_info=True)
            return DeadLetter(header_value(f"poison: {exc}"))
        except Exception as exc:
            span.record_exception(exc)
            if delivery.num_delivered >= policy.max_deliver:
                log.error("failed on delivery %d of %d, dead-lettering: %s", delivery.num_delivered,
                          policy.max_deliver, where, exc_info=True)
                return DeadLetter(header_value(
                    f"max_deliver {policy.max_deliver} reached: {type(exc).__name__}: {exc}"))
            delay = policy.delay_after(delivery.num_delivered)
            if isinstance(exc, TransientError):
                log.warning("transient failure on delivery %d, retrying in %.2fs: %s: %s",
                            delivery.num_delivered, delay, where, exc)
            else:
                log.exception("handler failed on delivery %d, retrying in %.2fs: %s",
                              delivery.num_delivered, delay, where)
            return Retry(delay)


async def follow_one(delivery: Delivery, handler: Handler, *, follower: str) -> None:
    """Run a follower's handler; a failure is logged and the follower moves on (nothing to retry)."""
    with span_from_headers(f"{follower} follow", delivery.headers), handling_scope(
        delivery.headers, delivery.msg_id
    ):
        try:
            await handler(delivery)
        except Exception:
            log.exception("follower handler failed, skipping: %s seq=%d subject=%s msg_id=%s",
                          follower, delivery.stream_seq, delivery.subject, delivery.msg_id)


class Publish(Protocol):
    def __call__(
        self, subject: str, data: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> Awaitable[PublishAck]: ...


async def dead_letter(publish: Publish, delivery: Delivery, *, stream: str, durable: str, reason: str) -> None:
    """Publish a copy of `delivery` to the consumer's dead-letter subject (idempotent per message)."""
    await publish(
        dead_letter_subject(stream, durable),
        delivery.data,
        msg_id=dead_letter_msg_id(durable, delivery.stream_seq),
        headers=dead_letter_headers(delivery, stream=stream, durable=durable, reason=reason),
    )
