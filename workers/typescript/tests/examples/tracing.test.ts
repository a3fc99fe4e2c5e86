/** The tracing example (`examples/tracing/traced_quote.ts`): its span continues the attempt's
 * trace (official OpenTelemetry SDK, in-memory exporter; no database). */

import { test } from "node:test";
import assert from "node:assert/strict";

import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

import { buildContext, runHandler } from "../../src/testing";
import { QuoteHandler } from "../../examples/tracing/traced_quote";

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const ATTEMPT_SPAN = "00f067aa0ba902b7";
const ITEMS = [
  { sku: "A", price: 250, quantity: 2 },
  { sku: "B", price: 10, quantity: 3 },
];

test("the handler's span is a child of the attempt", async () => {
  exporter.reset();
  const ctx = buildContext({
    input: { items: ITEMS },
    trace: { traceparent: `00-${TRACE_ID}-${ATTEMPT_SPAN}-01`, tracestate: "tasker=1" },
  });
  assert.equal(ctx.traceparent, `00-${TRACE_ID}-${ATTEMPT_SPAN}-01`);
  assert.equal(ctx.tracestate, "tasker=1");
  const result = await runHandler(new QuoteHandler(), ctx);
  assert.equal(result.success, true);
  assert.deepEqual(result.result, { total_cents: 530, lines: 2 });
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, 1);
  const [span] = spans;
  assert.equal(span.name, "price_quote");
  assert.equal(span.spanContext().traceId, TRACE_ID);
  assert.equal(span.parentSpanContext?.spanId, ATTEMPT_SPAN);
  assert.equal(span.parentSpanContext?.isRemote, true);
  assert.equal(span.spanContext().traceState?.get("tasker"), "1");
});

test("without a trace the handler starts its own", async () => {
  exporter.reset();
  const ctx = buildContext({ input: { items: ITEMS } });
  assert.equal(ctx.traceparent, null);
  assert.equal(ctx.tracestate, null);
  await runHandler(new QuoteHandler(), ctx);
  const [span] = exporter.getFinishedSpans();
  assert.equal(span.parentSpanContext, undefined);
});
