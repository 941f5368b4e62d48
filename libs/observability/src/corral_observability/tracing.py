"""OpenTelemetry setup: one SDK tracer provider per process, exporting only when asked to."""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

log = logging.getLogger(__name__)

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACER_NAME = "corral"

_lock = threading.Lock()


def configure(service_name: str) -> TracerProvider:
    """Install an SDK `TracerProvider` for this process, once; later calls return the same provider.

    Spans are exported only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and an OTLP exporter package is
    importable; nothing connects here (exporters connect lazily, from their own thread).
    """
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        exporter = _otlp_exporter()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        return provider


def tracer() -> trace.Tracer:
    """Corral's tracer from the current global provider (a no-op one until `configure`)."""
    return trace.get_tracer(TRACER_NAME)


def _otlp_exporter() -> SpanExporter | None:
    if not os.environ.get(OTLP_ENDPOINT_ENV):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[no-redef]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("%s is set but no OTLP exporter is installed: spans are not exported", OTLP_ENDPOINT_ENV)
            return None
    return OTLPSpanExporter()
