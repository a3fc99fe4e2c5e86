# frozen_string_literal: true

require "tasker_core/testing"

# The subscriber API and the two observability subscribers (spec §5.2-§5.4), fed events by the
# test kit without a database.
RSpec.describe "the observability subscribers" do
  include TaskerCore::Testing

  order = "ecommerce_order_processing"
  steps = %w[validate_cart process_payment update_inventory create_order send_confirmation]

  let(:order_events) do
    common = { namespace: "ecommerce_rb", workflow_name: order, workflow_version: "1.0.0" }
    events = [lifecycle_event("task.created", **common)]
    steps.zip([12, 30, 7, 9, 4]).each do |step, ms|
      result = step == "process_payment" ? { "amount_charged" => 124.76 } : {}
      events << lifecycle_event("step.started", step_name: step, attempt: 1, **common)
      events << lifecycle_event("step.completed", step_name: step, attempt: 1, duration_ms: ms, result: result, **common)
    end
    events << lifecycle_event("task.completed", duration_ms: 80, **common)
  end

  let(:refund_events) do
    [["validate_payment_eligibility", 4999], ["process_gateway_refund", 4999], ["notify_customer", 4999]].map do |step, cents|
      lifecycle_event("step.completed", namespace: "payments_rb", workflow_name: "process_refund", step_name: step,
                                        attempt: 1, duration_ms: 3, result: { "refund_amount" => cents })
    end + [lifecycle_event("task.completed", namespace: "payments_rb", workflow_name: "process_refund", duration_ms: 9)]
  end

  it "builds events with every §5.1 key and refuses unknown names and keys" do
    e = lifecycle_event("step.failed", step_name: "x", attempt: 2, error: { "error_code" => "E" })
    expect(e.keys).to match_array(%w[event_id event_name occurred_at task_uuid step_uuid step_name namespace
                                     workflow_name workflow_version correlation_id attempt duration_ms result error
                                     retry_delay_ms next_retry_at])
    expect(e.values_at("event_name", "attempt", "result")).to eq(["step.failed", 2, nil])
    expect { lifecycle_event("task.exploded") }.to raise_error(ArgumentError, /task.exploded/)
    expect { lifecycle_event("task.created", colour: "red") }.to raise_error(ArgumentError, /colour/)
  end

  it "counts business metrics exactly as the §5.3 example" do
    metrics = TaskerCore::Observability::BusinessMetricsSubscriber.new
    expect(metrics.event_names).to match_array(%w[step.completed task.completed])
    expect(feed_events(metrics, order_events + refund_events)).to eq(5 + 1 + 3 + 1)
    expect(metrics.snapshot).to eq("namespaces" => {
                                     "ecommerce_rb" => { "orders_completed" => 1, "revenue" => 124.76,
                                                         "refunds_processed" => 0, "refunded_cents" => 0 },
                                     "payments_rb" => { "orders_completed" => 0, "revenue" => 0,
                                                        "refunds_processed" => 1, "refunded_cents" => 4999 }
                                   })
    metrics.reset
    expect(metrics.snapshot).to eq("namespaces" => {})
  end

  it "monitors performance as the §5.4 example, with slow attempts and failures" do
    perf = TaskerCore::Observability::PerformanceMonitoringSubscriber.new
    expect(perf.slow_threshold_ms).to eq(1000)
    feed_events(perf, order_events)
    workflow = perf.snapshot["workflows"]["ecommerce_rb/ecommerce_order_processing@1.0.0"]
    expect(workflow.values_at("count", "failures", "p50_ms", "p95_ms")).to eq([1, 0, 80, 80])
    expect(workflow["steps"].size).to eq(5)
    expect(workflow["steps"]["process_payment"]).to eq("count" => 1, "failures" => 0, "p50_ms" => 30, "p95_ms" => 30,
                                                       "slow_count" => 0, "slow" => false)
    slow = TaskerCore::Observability::PerformanceMonitoringSubscriber.new(slow_threshold_ms: 10)
    common = { namespace: "ecommerce_rb", workflow_name: order, workflow_version: "1.0.0",
               step_name: "process_payment", attempt: 1 }
    feed_events(slow, [lifecycle_event("step.retry_scheduled", duration_ms: 40, **common),
                       lifecycle_event("step.completed", duration_ms: 5, **common)])
    expect(slow.snapshot["workflows"]["ecommerce_rb/ecommerce_order_processing@1.0.0"]["steps"]["process_payment"])
      .to eq("count" => 2, "failures" => 1, "p50_ms" => 5, "p95_ms" => 40, "slow_count" => 1, "slow" => true)
    expect { TaskerCore::Observability::PerformanceMonitoringSubscriber.new(slow_threshold_ms: "x") }
      .to raise_error(ArgumentError)
  end

  it "feeds a subscriber only the events it wants" do
    counter = Struct.new(:event_names, :seen) do
      def call(event) = seen << event["event_name"]
    end
    everything = counter.new(["*"], [])
    expect(feed_events(everything, order_events)).to eq(order_events.size)
    tasks = counter.new(%w[task.created task.completed], [])
    feed_events(tasks, order_events)
    expect(tasks.seen).to eq(%w[task.created task.completed])
  end

  it "resolves the built-in subscribers by their spec names and refuses unknown ones" do
    expect(TaskerCore::Events.resolve_subscriber("Observability::BusinessMetricsSubscriber"))
      .to be_a(TaskerCore::Observability::BusinessMetricsSubscriber)
    expect { TaskerCore::Events.resolve_subscriber("Observability::NoSuchThing") }
      .to raise_error(TaskerCore::Errors::ConfigurationError, /NoSuchThing/)
  end
end
