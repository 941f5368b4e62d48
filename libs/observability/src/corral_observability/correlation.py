"""Correlation and causation ids: which conversation a message belongs to, and what caused it.

A message published while another is being handled keeps the handled message's correlation id and
names it as its cause; a message published outside any handling starts a conversation of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

CORRELATION_ID = "Corral-Correlation-Id"
CAUSATION_ID = "Corral-Causation-Id"


class Correlation(NamedTuple):
    correlation_id: str
    causation_id: str
    """Id of the message being handled: the cause of whatever is published now."""


_current: ContextVar[Correlation | None] = ContextVar("corral_correlation", default=None)


def current_correlation() -> Correlation | None:
    return _current.get()


@contextmanager
def correlation_scope(correlation_id: str, causation_id: str) -> Iterator[Correlation]:
    """Within the block, published messages carry this correlation id and `causation_id` as cause."""
    correlation = Correlation(correlation_id, causation_id)
    token = _current.set(correlation)
    try:
        yield correlation
    finally:
        _current.reset(token)


def correlation_headers(msg_id: str) -> dict[str, str]:
    """Headers for a message `msg_id` published now: from the current scope, else a new conversation."""
    correlation = _current.get()
    if correlation is None:
        return {CORRELATION_ID: msg_id, CAUSATION_ID: msg_id}
    return {CORRELATION_ID: correlation.correlation_id, CAUSATION_ID: correlation.causation_id}


@contextmanager
def handling_scope(headers: Mapping[str, str], msg_id: str) -> Iterator[Correlation]:
    """The scope to handle a received message in: its correlation id (else its own id), itself as cause."""
    with correlation_scope(headers.get(CORRELATION_ID) or msg_id, msg_id) as correlation:
        yield correlation
