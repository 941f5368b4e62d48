"""What a handler raises to steer redelivery, and what the bus raises to its callers."""

from __future__ import annotations


class TransientError(Exception):
    """Raised by a handler: nak with backoff, retry later (until `max_deliver`, then dead-letter)."""


class PoisonMessage(Exception):
    """Raised by a handler: the message can never succeed; dead-letter it at once, never retry."""


class MessagingError(Exception):
    """Base of the errors the bus itself raises."""


class NoStreamError(MessagingError):
    """A publish whose subject no stream stores (or whose stream has not been created yet)."""


class NoRespondersError(MessagingError):
    """A request nobody serves."""


class RemoteError(MessagingError):
    """The server of a request failed while handling it; the message is its error text."""


class NotConnectedError(MessagingError):
    """The bus is used before `connect()` or after `close()`."""


class NoBucketError(MessagingError):
    """A key-value operation on a bucket that does not exist (see `ensure_streams`)."""
