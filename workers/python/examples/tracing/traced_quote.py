"""A tracing example (issue 17): a handler that continues its attempt's trace with the official
OpenTelemetry SDK for Python.

``context.traceparent`` / ``context.tracestate`` hold the W3C trace context of the attempt (its
own span when the worker exports traces, ``OTEL_EXPORTER_OTLP_ENDPOINT``; else the context the
task was created with). Extracting them with the global propagator makes every span the handler
starts a child of the attempt, in the same trace as the API request and the other steps. Configure
your own ``TracerProvider`` and exporter as usual; without one the API's spans are no-ops.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict

from opentelemetry import propagate, trace

from tasker_core import StepContext, StepHandler, StepHandlerResult

tracer = trace.get_tracer("examples.tracing")


class QuoteHandler(StepHandler):
    """Prices ``input.items`` (``[{sku, price, quantity}]``) inside a span of its own."""

    def call(self, context: StepContext) -> StepHandlerResult:
        carrier: Dict[str, str] = {}
        if context.traceparent:
            carrier["traceparent"] = context.traceparent
        if context.tracestate:
            carrier["tracestate"] = context.tracestate
        parent = propagate.extract(carrier)
        items: list[Dict[str, Any]] = context.get_input("items") or []
        with tracer.start_as_current_span("price_quote", context=parent) as span:
            span.set_attribute("quote.lines", len(items))
            total = sum((Decimal(str(i["price"])) * int(i["quantity"]) for i in items), Decimal("0"))
            span.set_attribute("quote.total", str(total))
        return self.success({"total": str(total), "lines": len(items)})
