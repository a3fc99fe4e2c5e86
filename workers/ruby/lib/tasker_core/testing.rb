# frozen_string_literal: true

require "tasker_core"

module TaskerCore
  # Helpers for testing handlers without a database or a worker.
  #
  #   require "tasker_core/testing"
  #
  #   ctx = TaskerCore::Testing.build_context(step_name: "validate_cart", input: { "cart_items" => [...] })
  #   result = TaskerCore::Testing.run_handler(Ecommerce::StepHandlers::ValidateCartHandler.new, ctx)
  #   expect(result.success?).to be(true)
  #
  # +build_context+ is {StepContext.from_json} with keyword arguments; +run_handler+ runs one
  # attempt exactly as the worker does (typed errors and unexpected exceptions become failures).
  #
  # Subscribers are tested the same way, with events built by +lifecycle_event+:
  #
  #   metrics = TaskerCore::Observability::BusinessMetricsSubscriber.new
  #   TaskerCore::Testing.feed_events(metrics, [TaskerCore::Testing.lifecycle_event("task.completed",
  #     namespace: "ecommerce_rb", workflow_name: "ecommerce_order_processing")])
  module Testing
    FIELDS = %i[step_name input dependency_results config attempt max_attempts task_uuid step_uuid namespace
                workflow_name workflow_version correlation_id trace].freeze

    module_function

    def build_context(task_creator: nil, **fields)
      unknown = fields.keys - FIELDS
      raise ArgumentError, "unknown context field(s): #{unknown.join(', ')} (known: #{FIELDS.join(', ')})" unless unknown.empty?

      StepContext.from_json(fields.transform_keys(&:to_s), task_creator: task_creator)
    end

    def run_handler(handler, context)
      Execution.execute(handler, context)
    end

    # A §5.1 event Hash (String keys) with every key: +fields+ over defaults (new +event_id+ and
    # +task_uuid+, +occurred_at+ now, a correlation id, the rest nil).
    # @raise [ArgumentError] for an unknown event name or key
    def lifecycle_event(event_name, **fields)
      Native._lifecycle_event(event_name.to_s, fields.transform_keys(&:to_s))
    end

    # Calls +subscriber.call(event)+ for each event it wants (its +event_names+, "*" = all), in
    # order, as a worker would.
    # @return [Integer] how many it was given
    def feed_events(subscriber, events)
      names = Array(subscriber.event_names).map(&:to_s)
      events.count do |event|
        next false unless names.include?("*") || names.include?(event["event_name"])

        subscriber.call(event.dup)
        true
      end
    end
  end
end
