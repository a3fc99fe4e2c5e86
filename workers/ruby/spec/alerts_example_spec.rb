# frozen_string_literal: true

require "tasker_core/testing"
require_relative "../examples/blog/alerts"

# The observability example subscriber, fed by the test kit (no database).
RSpec.describe Alerts::FailureAlertSubscriber do
  include TaskerCore::Testing

  it "counts failures by code and remembers failed tasks" do
    alerts = described_class.new
    failed = ->(code) { lifecycle_event("step.failed", step_name: "process_payment", attempt: 1, error: { "error_code" => code }) }
    task = lifecycle_event("task.failed", namespace: "ecommerce_rb", workflow_name: "ecommerce_order_processing",
                                          workflow_version: "1.0.0", step_name: "process_payment", correlation_id: "c-9",
                                          error: { "error_code" => "PAYMENT_DECLINED" })
    completed = lifecycle_event("step.completed", step_name: "validate_cart", attempt: 1)
    given = feed_events(alerts, [failed["PAYMENT_DECLINED"], completed, failed["PAYMENT_DECLINED"], failed["NETWORK_ERROR"], task])
    expect(given).to eq(4)
    snapshot = alerts.snapshot
    expect(snapshot["failures_by_code"]).to eq("NETWORK_ERROR" => 1, "PAYMENT_DECLINED" => 2)
    expect(snapshot["failed_tasks"][0]).to include("workflow" => "ecommerce_rb/ecommerce_order_processing@1.0.0",
                                                   "error_code" => "PAYMENT_DECLINED", "correlation_id" => "c-9")
    feed_events(alerts, [task] * 30)
    expect(alerts.snapshot["failed_tasks"].size).to eq(described_class::KEEP)
  end
end
