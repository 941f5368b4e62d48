"""Event store: contract events on `eventsourcing`, and the outbox relay to `EVT`."""

from .log import AggregateNotFoundError, ConcurrencyConflict, EventLog, environment_for, iter_all
from .mapper import MsgspecMapper, Recorded, utcnow
from .outbox import OutboxRelay, envelope_of
from .tailing import LogTail

__all__ = [
    "AggregateNotFoundError", "ConcurrencyConflict", "EventLog", "LogTail", "MsgspecMapper", "OutboxRelay", "Recorded",
    "envelope_of", "environment_for", "iter_all", "utcnow",
]
