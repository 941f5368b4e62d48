"""W3C trace context in message headers: inject on publish, extract on delivery."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context

from .tracing import tracer

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add `traceparent` (and `tracestate`, if any) for the current span to `headers` and return it.

    The dict is updated in place. Without a valid current span a fresh random trace is started, so
    every message carries a `traceparent` and its consumers share one trace.
    """
    propagate.inject(headers)
    if TRACEPARENT not in headers:
        headers[TRACEPARENT] = new_traceparent()
    return headers


def new_traceparent() -> str:
    """A valid, sampled `traceparent` with random (non-zero) trace and span ids."""
    trace_id = random.getrandbits(128) or 1
    span_id = random.getrandbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def extract_context(headers: Mapping[str, str]) -> Context:
    """The OpenTelemetry context carried by `headers` (an empty one when they carry none)."""
    return propagate.extract(dict(headers))


@contextmanager
def span_from_headers(name: str, headers: Mapping[str, str]) -> Iterator[trace.Span]:
    """Run the block in a consumer span whose parent is the span that published the message."""
    with tracer().start_as_current_span(
        name, context=extract_context(headers), kind=trace.SpanKind.CONSUMER
    ) as span:
        yield span
