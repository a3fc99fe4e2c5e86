/**
 * A tracing example (issue 17): a handler that continues its attempt's trace with the official
 * OpenTelemetry API for JavaScript.
 *
 * `context.traceparent` / `context.tracestate` hold the W3C trace context of the attempt (its own
 * span when the worker exports traces, `OTEL_EXPORTER_OTLP_ENDPOINT`; else the context the task
 * was created with). Extracting them with the W3C propagator makes every span the handler starts a
 * child of the attempt, in the same trace as the API request and the other steps. Register your
 * own tracer provider and exporter as usual (the NodeSDK, say); without one the spans are no-ops.
 */

import { ROOT_CONTEXT, defaultTextMapGetter, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { StepHandler, type StepContext, type StepHandlerResult } from "@tasker/worker";

const tracer = trace.getTracer("examples.tracing");
const propagator = new W3CTraceContextPropagator();

interface Line {
  sku: string;
  price: number;
  quantity: number;
}

/** Prices `input.items` (`[{sku, price, quantity}]`, prices in cents) inside a span of its own. */
export class QuoteHandler extends StepHandler {
  call(context: StepContext): StepHandlerResult {
    const carrier: Record<string, string> = {};
    if (context.traceparent) carrier.traceparent = context.traceparent;
    if (context.tracestate) carrier.tracestate = context.tracestate;
    const parent = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
    const items = (context.getInput("items") ?? []) as Line[];
    const span = tracer.startSpan("price_quote", { attributes: { "quote.lines": items.length } }, parent);
    try {
      const totalCents = items.reduce((sum, i) => sum + i.price * i.quantity, 0);
      span.setAttribute("quote.total_cents", totalCents);
      return this.success({ total_cents: totalCents, lines: items.length });
    } finally {
      span.end();
    }
  }
}
