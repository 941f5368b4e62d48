"""What publishing returns, what a handler receives, and how a consumer retries."""

from __future__ import annotations

import msgspec


class PublishAck(msgspec.Struct, frozen=True):
    stream: str
    seq: int
    """Stream sequence of the stored message (of the original one for a duplicate)."""
    duplicate: bool


class Delivery(msgspec.Struct):
    """One message handed to a handler."""

    subject: str
    data: bytes
    headers: dict[str, str]
    msg_id: str
    """The message's `Nats-Msg-Id` (or `"<stream>:<seq>"` for a message published without one)."""
    stream_seq: int
    num_delivered: int
    """1 on the first delivery, 2 on the first redelivery, and so on."""


class ConsumerPolicy(msgspec.Struct, frozen=True):
    max_deliver: int = 5
    """A message still failing on this delivery is dead-lettered."""
    backoff: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0)
    """Seconds before redelivery after the 1st, 2nd, ... failure; the last one repeats."""
    ack_wait: float = 30.0
    """Seconds before an unacknowledged message is redelivered (a crashed consumer)."""
    max_ack_pending: int = 256
    """Messages delivered but not yet acked, at most. 1 keeps strict stream order across retries."""

    def __post_init__(self) -> None:
        if self.max_deliver < 1:
            raise ValueError("max_deliver must be at least 1")
        if not self.backoff or any(delay < 0 for delay in self.backoff):
            raise ValueError("backoff needs at least one delay, none negative")
        if self.ack_wait <= 0 or self.max_ack_pending < 1:
            raise ValueError("ack_wait must be positive and max_ack_pending at least 1")

    def delay_after(self, num_delivered: int) -> float:
        """Seconds to wait before redelivering a message that failed on delivery `num_delivered`."""
        return self.backoff[min(num_delivered - 1, len(self.backoff) - 1)]
