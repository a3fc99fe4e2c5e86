"""The tracing example: its span continues the attempt's trace (official OpenTelemetry SDK,
in-memory exporter; no database)."""

import sys
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasker_core.testing import build_context, run_handler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "tracing"))

from traced_quote import QuoteHandler  # noqa: E402

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ATTEMPT_SPAN = "00f067aa0ba902b7"
ITEMS = [{"sku": "A", "price": 2.5, "quantity": 2}, {"sku": "B", "price": 0.1, "quantity": 3}]


def test_the_handler_span_is_a_child_of_the_attempt():
    EXPORTER.clear()
    ctx = build_context(
        input={"items": ITEMS},
        trace={"traceparent": f"00-{TRACE_ID}-{ATTEMPT_SPAN}-01", "tracestate": "tasker=1"},
    )
    assert ctx.traceparent == f"00-{TRACE_ID}-{ATTEMPT_SPAN}-01"
    assert ctx.tracestate == "tasker=1"
    result = run_handler(QuoteHandler(), ctx)
    assert result.success and result.result == {"total": "5.3", "lines": 2}
    (span,) = EXPORTER.get_finished_spans()
    assert span.name == "price_quote"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == ATTEMPT_SPAN
    assert span.parent.is_remote
    assert span.context.trace_state.get("tasker") == "1"
    assert span.attributes["quote.total"] == "5.3"


def test_without_a_trace_the_handler_starts_its_own():
    EXPORTER.clear()
    ctx = build_context(input={"items": ITEMS})
    assert ctx.traceparent is None and ctx.tracestate is None
    run_handler(QuoteHandler(), ctx)
    (span,) = EXPORTER.get_finished_spans()
    assert span.parent is None
