"""Trace context and correlation ids travel through message headers."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from corral_observability import (
    CAUSATION_ID,
    CORRELATION_ID,
    LogContextFilter,
    configure,
    correlation_headers,
    correlation_scope,
    current_correlation,
    extract_context,
    handling_scope,
    inject_headers,
    span_from_headers,
    tracer,
)
from corral_observability.tracing import OTLP_ENDPOINT_ENV, _otlp_exporter

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = configure("observability-tests")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_configure_installs_one_sdk_provider() -> None:
    first = configure("a")
    assert isinstance(first, TracerProvider)
    assert configure("b") is first
    assert trace.get_tracer_provider() is first


def test_no_exporter_without_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OTLP_ENDPOINT_ENV, raising=False)
    assert _otlp_exporter() is None


def test_otlp_exporter_when_endpoint_set_does_not_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OTLP_ENDPOINT_ENV, "http://127.0.0.1:1")  # nothing listens: building must not care
    exporter = _otlp_exporter()
    assert exporter is not None
    exporter.shutdown()


def test_inject_without_span_starts_a_fresh_valid_trace() -> None:
    first = inject_headers({})
    second = inject_headers({"x": "y"})
    fresh = TRACEPARENT.match(first["traceparent"])
    assert fresh and fresh.group(3) == "01"
    assert second["x"] == "y"
    assert first["traceparent"] != second["traceparent"]
    assert trace.get_current_span(extract_context(first)).get_span_context().is_valid


def test_inject_updates_and_returns_the_same_dict() -> None:
    headers: dict[str, str] = {}
    assert inject_headers(headers) is headers
    assert "traceparent" in headers


def test_inject_inside_a_span_carries_that_span(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("publish") as span:
        headers = inject_headers({})
    match = TRACEPARENT.match(headers["traceparent"])
    assert match
    context = span.get_span_context()
    assert match.group(1) == f"{context.trace_id:032x}"
    assert match.group(2) == f"{context.span_id:016x}"


def test_tracestate_travels_too(spans: InMemorySpanExporter) -> None:
    incoming = {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01", "tracestate": "corral=1"}
    with span_from_headers("handle", incoming):
        outgoing = inject_headers({})
    assert outgoing["tracestate"] == "corral=1"


def test_span_from_headers_continues_the_publishers_trace(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("publish") as producer:
        headers = inject_headers({})
    with span_from_headers("consume", headers) as consumer:
        assert consumer.get_span_context().trace_id == producer.get_span_context().trace_id
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert finished["consume"].parent is not None
    assert finished["consume"].parent.span_id == producer.get_span_context().span_id
    assert finished["consume"].kind == trace.SpanKind.CONSUMER


def test_span_from_headers_without_trace_starts_a_root(spans: InMemorySpanExporter) -> None:
    with span_from_headers("orphan", {}) as span:
        assert span.get_span_context().is_valid
    orphan = [s for s in spans.get_finished_spans() if s.name == "orphan"][-1]
    assert orphan.parent is None


def test_correlation_outside_any_scope_starts_a_conversation() -> None:
    assert current_correlation() is None
    assert correlation_headers("m1") == {CORRELATION_ID: "m1", CAUSATION_ID: "m1"}


def test_correlation_scope_nests_and_restores() -> None:
    with correlation_scope("c1", "m1"):
        assert correlation_headers("m2") == {CORRELATION_ID: "c1", CAUSATION_ID: "m1"}
        with correlation_scope("c1", "m2"):
            assert current_correlation() == ("c1", "m2")
        assert current_correlation() == ("c1", "m1")
    assert current_correlation() is None


def test_handling_scope_makes_the_handled_message_the_cause() -> None:
    with handling_scope({CORRELATION_ID: "c9"}, "m5"):
        assert correlation_headers("m6") == {CORRELATION_ID: "c9", CAUSATION_ID: "m5"}
    with handling_scope({}, "m7"):
        assert correlation_headers("m8") == {CORRELATION_ID: "m7", CAUSATION_ID: "m7"}


async def test_correlation_is_per_task() -> None:
    seen: dict[str, object] = {}
    entered = asyncio.Event()

    async def inside() -> None:
        with correlation_scope("c1", "m1"):
            entered.set()
            await asyncio.sleep(0)
            seen["inside"] = current_correlation()

    async def outside() -> None:
        await entered.wait()
        seen["outside"] = current_correlation()

    await asyncio.gather(inside(), outside())
    assert seen == {"inside": ("c1", "m1"), "outside": None}


def test_log_records_carry_trace_and_correlation(spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    LogContextFilter().filter(record)
    assert (record.trace_id, record.correlation_id) == ("-", "-")  # type: ignore[attr-defined]
    with tracer().start_as_current_span("work") as span, correlation_scope("c1", "m1"):
        LogContextFilter().filter(record)
    assert record.trace_id == f"{span.get_span_context().trace_id:032x}"  # type: ignore[attr-defined]
    assert (record.correlation_id, record.causation_id) == ("c1", "m1")  # type: ignore[attr-defined]
