# frozen_string_literal: true

module TaskerCore
  # What a handler receives (spec §0.5): a native class wrapping the core's context. Input and
  # dependency results are read-only: every accessor returns a fresh copy (Hashes with String
  # keys; Integer and Float as JSON wrote them).
  #
  # Native readers: +task_uuid+, +step_uuid+, +step_name+, +namespace+, +workflow_name+,
  # +workflow_version+, +correlation_id+, +attempt+, +max_attempts+, +input+,
  # +dependency_results+, +config+, +get_input(key)+, +get_input_or(key, default)+,
  # +get_dependency_result(step_name)+, +get_config(key)+, +retry?+, +last_retry?+, +to_h+.
  class StepContext
    # Test helper: a context from a Hash or JSON text such as
    # <tt>{ "step_name" => "validate_cart", "input" => {...}, "dependency_results" => {...},
    # "attempt" => 2 }</tt>. Every field is optional. +task_creator+ (a callable taking the
    # request Hash and returning <tt>{ "task_uuid", "status", "created", ... }</tt>) serves
    # {#create_task} and may raise {Errors::TaskCreationError}. Raises
    # {Errors::InvalidContextError} for data of the wrong shape.
    def self.from_json(data, task_creator: nil)
      if !task_creator.nil? && !task_creator.respond_to?(:call)
        raise TypeError, "task_creator must respond to #call(request) -> Hash"
      end

      context = _from_json(data)
      context.instance_variable_set(:@task_creator, task_creator)
      context
    end

    # Walks into a dependency's result: +get_dependency_field("step", "items", 0, "sku")+.
    def get_dependency_field(step_name, *path)
      _get_dependency_field(step_name, path)
    end

    # Creates a task through the engine (§0.3); +options+ are TaskRequest::OPTIONS. Returns
    # <tt>{ "task_uuid", "status", "created", "namespace", "name", "version", "correlation_id" }</tt>.
    # Raises {Errors::TaskCreationError}.
    def create_task(namespace, name, context, **options)
      request = TaskRequest.build(namespace, name, context, **options)
      creator = instance_variable_defined?(:@task_creator) ? @task_creator : nil
      return _create_task(request) if creator.nil?

      answer = creator.call(request)
      unless answer.is_a?(Hash) && %w[task_uuid status].all? { |k| answer.key?(k) || answer.key?(k.to_sym) }
        raise TypeError, "task_creator must return a Hash with task_uuid, status, created, namespace, name, " \
                         "version and correlation_id, got #{answer.inspect}"
      end
      answer.transform_keys(&:to_s)
    end

    # Logs through the core's tracing; every line carries correlation_id, task_uuid, step_uuid,
    # step_name and namespace.
    def logger
      StepLogger.new(self)
    end

    # +context.logger+.
    class StepLogger
      def initialize(context)
        @context = context
      end

      %w[debug info warn error].each do |level|
        define_method(level) { |message| @context._log(level, message.to_s) }
      end
    end
  end
end
