# frozen_string_literal: true

module TaskerCore
  # The §0.3 task-creation request, as both {StepContext#create_task} and {Client#create_task}
  # send it: String keys, unset options left out.
  module TaskRequest
    OPTIONS = %i[version correlation_id parent_correlation_id idempotency_key initiator source_system reason tags
                 priority].freeze

    module_function

    def build(namespace, name, context, **options)
      unknown = options.keys - OPTIONS
      raise ArgumentError, "unknown task request option(s): #{unknown.join(', ')}" unless unknown.empty?

      { "namespace" => namespace, "name" => name, "context" => context }
        .merge(options.transform_keys(&:to_s)).compact
    end
  end
end
