# frozen_string_literal: true

require "logger"

module TaskerCore
  # What a handler receives (spec §0.5): a native class wrapping the core's context. Input and
  # dependency results are read-only: every accessor returns a fresh copy (Hashes with String
  # keys; Integer and Float as JSON wrote them).
  #
  # The readers below are defined by the native extension; a spec checks that every one
  # documented here exists on the loaded class and that it defines no other public method.
  #
  # @!method task_uuid
  #   @return [String] the task's uuid
  # @!method step_uuid
  #   @return [String] the step's uuid, the same for every attempt
  # @!method step_name
  #   @return [String] the step's name in the template
  # @!method namespace
  #   @return [String] the template's namespace, with its language suffix (+ecommerce_rb+)
  # @!method workflow_name
  #   @return [String] the template's name
  # @!method workflow_version
  #   @return [String] the template's version, +MAJOR.MINOR.PATCH+
  # @!method correlation_id
  #   @return [String] the task's correlation id
  # @!method traceparent
  #   @return [String, nil] the W3C +traceparent+ continuing this attempt's trace (the attempt's
  #     span when the worker exports traces, else the task's), or nil when the task has no trace
  # @!method tracestate
  #   @return [String, nil] the W3C +tracestate+ that goes with +traceparent+
  # @!method attempt
  #   @return [Integer] this attempt's number, from 1
  # @!method max_attempts
  #   @return [Integer] the template's limit
  # @!method input
  #   @return [Hash{String => Object}] the task's input (a copy)
  # @!method dependency_results
  #   @return [Hash{String => Hash}] every upstream step's result, by step name (a copy)
  # @!method config
  #   @return [Hash{String => Object}] the step's +handler.initialization+
  # @!method get_input(key)
  #   @param key [String, Symbol] a top-level key of the input
  #   @return [Object, nil] its value, or nil when absent or null
  # @!method get_input_or(key, default)
  #   @param key [String, Symbol]
  #   @param default [Object] returned when the value is absent or null
  #   @return [Object]
  # @!method get_dependency_result(step_name)
  #   @param step_name [String]
  #   @return [Hash, nil] the result of a completed dependency
  # @!method get_config(key)
  #   @param key [String, Symbol]
  #   @return [Object, nil] a key of the step's +handler.initialization+
  # @!method retry?
  #   @return [Boolean] +attempt > 1+
  # @!method last_retry?
  #   @return [Boolean] +attempt == max_attempts+
  # @!method to_h
  #   @return [Hash{String => Object}] the context's data as JSON-shaped values
  # @!method inspect
  #   @return [String]
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
    # @param step_name [String]
    # @param path [Array<String, Integer>] keys and indexes
    # @return [Object, nil] the value there, or nil
    def get_dependency_field(step_name, *path)
      _get_dependency_field(step_name, path)
    end

    # Creates a task through the engine (§0.3).
    # @param namespace [String]
    # @param name [String]
    # @param context [Hash] the new task's input
    # @param options [Hash] TaskRequest::OPTIONS (+version:+, +idempotency_key:+, ...)
    # @return [Hash{String => Object}] <tt>{ "task_uuid", "status", "created", "namespace", "name",
    #   "version", "correlation_id" }</tt>
    # @raise [Errors::TaskCreationError]
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

    # A +::Logger+ for this step (levels, the block form, +progname+, +level=+), writing through
    # the core's tracing: every line carries correlation_id, task_uuid, step_uuid, step_name and
    # namespace, and the worker's log (JSON lines with +TASKER_LOG_FORMAT=json+) shows them.
    #
    #   context.logger.info("charged #{amount}")
    #   context.logger.warn("gateway") { "refused: #{reason}" }
    def logger
      @logger ||= StepLogger.new(self)
    end

    # +context.logger+: a +::Logger+ whose lines go to the core's log with the step's
    # correlation fields; +progname+, when given, is written as a field.
    class StepLogger < ::Logger
      LEVELS = { ::Logger::DEBUG => "debug", ::Logger::INFO => "info", ::Logger::WARN => "warn",
                 ::Logger::ERROR => "error", ::Logger::FATAL => "error", ::Logger::UNKNOWN => "error" }.freeze

      def initialize(context, level: ::Logger::DEBUG, progname: nil)
        super(nil, level: level, progname: progname)
        @context = context
      end

      # Logger's one entry point: the level filter, the block form and progname as ::Logger has
      # them, then one line through the core.
      def add(severity, message = nil, progname = nil)
        severity ||= ::Logger::UNKNOWN
        return true if severity < level

        progname ||= @progname
        if message.nil?
          if block_given?
            message = yield
          else
            message = progname
            progname = @progname
          end
        end
        text = message.is_a?(Exception) ? "#{message.message} (#{message.class})\n#{(message.backtrace || []).join("\n")}" : message.to_s
        fields = progname.nil? ? nil : { "progname" => progname.to_s }
        @context._log(LEVELS.fetch(severity, "error"), text, fields)
        true
      end
      alias log add
    end
  end
end
