"""OpenTelemetry setup, W3C trace context in message headers, correlation ids and log correlation."""

from .correlation import (
    CAUSATION_ID,
    CORRELATION_ID,
    Correlation,
    correlation_headers,
    correlation_scope,
    current_correlation,
    handling_scope,
)
from .log_context import LogContextFilter
from .trace_headers import TRACEPARENT, TRACESTATE, extract_context, inject_headers, new_traceparent, span_from_headers
from .tracing import configure, tracer

__all__ = [
    "CAUSATION_ID",
    "CORRELATION_ID",
    "TRACEPARENT",
    "TRACESTATE",
    "Correlation",
    "LogContextFilter",
    "configure",
    "correlation_headers",
    "correlation_scope",
    "current_correlation",
    "extract_context",
    "handling_scope",
    "inject_headers",
    "new_traceparent",
    "span_from_headers",
    "tracer",
]
