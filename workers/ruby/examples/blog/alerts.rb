# frozen_string_literal: true

# An observability example (spec §5.2): a subscriber of your own that alerts on failures.
#
# It counts failed attempts by error code and keeps the last 20 failed tasks, and serves both as
# its snapshot. +tasker-worker --subscribe Alerts::FailureAlertSubscriber+ (with this directory on
# the handler path) runs it, and the worker's +GET /observability/snapshots+ shows it; in your own
# process, +worker.subscribe(Alerts::FailureAlertSubscriber.new, name: "alerts")+. The same
# subscriber exists in every language.
module Alerts
  # Counts +step.failed+ by error code and remembers each +task.failed+. Thread-safe.
  class FailureAlertSubscriber
    KEEP = 20

    def initialize
      @lock = Mutex.new
      @failures_by_code = Hash.new(0)
      @failed_tasks = []
    end

    def event_names = %w[step.failed task.failed]

    def call(event)
      code = event.dig("error", "error_code") || "UNKNOWN"
      @lock.synchronize do
        next @failures_by_code[code] += 1 if event["event_name"] == "step.failed"

        @failed_tasks << {
          "task_uuid" => event["task_uuid"],
          "workflow" => "#{event['namespace']}/#{event['workflow_name']}@#{event['workflow_version']}",
          "step_name" => event["step_name"], "error_code" => code, "correlation_id" => event["correlation_id"]
        }
        @failed_tasks.shift while @failed_tasks.size > KEEP
      end
    end

    def snapshot
      @lock.synchronize do
        { "failures_by_code" => @failures_by_code.sort.to_h, "failed_tasks" => @failed_tasks.dup }
      end
    end
  end
end
