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
  module Testing
    FIELDS = %i[step_name input dependency_results config attempt max_attempts task_uuid step_uuid namespace
                workflow_name workflow_version correlation_id].freeze

    module_function

    def build_context(task_creator: nil, **fields)
      unknown = fields.keys - FIELDS
      raise ArgumentError, "unknown context field(s): #{unknown.join(', ')} (known: #{FIELDS.join(', ')})" unless unknown.empty?

      StepContext.from_json(fields.transform_keys(&:to_s), task_creator: task_creator)
    end

    def run_handler(handler, context)
      Execution.execute(handler, context)
    end
  end
end
