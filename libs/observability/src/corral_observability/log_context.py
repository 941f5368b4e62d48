"""Log correlation: stamp every log record with the current trace and correlation ids."""

from __future__ import annotations

import logging

from opentelemetry import trace

from .correlation import current_correlation


class LogContextFilter(logging.Filter):
    """Adds `trace_id`, `span_id`, `correlation_id` and `causation_id` (or "-") to each record.

    Attach it to a handler, then use them in the format: `%(trace_id)s %(correlation_id)s %(message)s`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = f"{context.trace_id:032x}" if context.is_valid else "-"
        record.span_id = f"{context.span_id:016x}" if context.is_valid else "-"
        correlation = current_correlation()
        record.correlation_id = correlation.correlation_id if correlation else "-"
        record.causation_id = correlation.causation_id if correlation else "-"
        return True
