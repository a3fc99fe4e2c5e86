# frozen_string_literal: true

module TaskerCore
  # The Tasker exception tree. Every exception Tasker raises derives from {Errors::Error}.
  #
  # Handlers raise {PermanentError} or {RetryableError} to fail a step; anything else a handler
  # raises becomes a retryable +UNHANDLED_EXCEPTION+ failure. The native extension raises the
  # other classes: {NATIVE_ERROR_KINDS} maps each of its error kinds to one class, and a spec checks
  # the mapping covers every kind the extension reports.
  module Errors
    # Root of every Tasker exception.
    class Error < StandardError; end

    # A typed step failure raised by a handler (spec §0.6).
    class StepError < Error
      # Marks the typed step failures of any copy of this gem; see {.step_error?}.
      TASKER_BRAND = "tasker.StepError/1"

      attr_reader :error_code, :retry_after, :context

      # True for a PermanentError or RetryableError of this copy of the gem or of any other.
      def self.step_error?(value)
        value.is_a?(StepError) || (value.class.const_defined?(:TASKER_BRAND) &&
                                   value.class::TASKER_BRAND == TASKER_BRAND && value.respond_to?(:to_h))
      end

      def self.default_code
        "STEP_ERROR"
      end

      def initialize(message, error_code: nil, retry_after: nil, context: {})
        super(message)
        @error_code = error_code || self.class.default_code
        @retry_after = retry_after
        @context = context.nil? ? {} : context.to_h
      end

      def retryable?
        false
      end

      # The error object as the engine stores it.
      def to_h
        {
          "message" => message,
          "error_code" => error_code,
          "retryable" => retryable?,
          "retry_after" => retry_after,
          "context" => context
        }
      end
    end

    # A failure that retrying cannot fix: the step goes to +error+ at once.
    class PermanentError < StepError
      def self.default_code
        "PERMANENT_ERROR"
      end

      def initialize(message, error_code: nil, context: {})
        super(message, error_code: error_code, retry_after: nil, context: context)
      end
    end

    # A transient failure: the step is retried after +retry_after+ seconds (when given) or the
    # template's backoff, until +max_attempts+ is used up.
    class RetryableError < StepError
      def self.default_code
        "RETRYABLE_ERROR"
      end

      def initialize(message, error_code: nil, retry_after: nil, context: {})
        unless retry_after.nil? || (retry_after.is_a?(Integer) && retry_after >= 0)
          raise ArgumentError, "retry_after must be a non-negative Integer of seconds, got #{retry_after.inspect}"
        end

        super(message, error_code: error_code, retry_after: retry_after, context: context)
      end

      def retryable?
        true
      end
    end

    # A worker setting is invalid (bad address, concurrency, visibility timeout...).
    class ConfigurationError < Error; end
    # A task template failed to load or validate; the message names file, step and field.
    class TemplateError < Error; end
    # PostgreSQL was unreachable or a statement failed.
    class DatabaseError < Error; end
    # The engine refused an operation (e.g. registering a conflicting template).
    class EngineError < Error; end
    # The worker could not use a socket or file (e.g. the health port is taken).
    class WorkerIOError < Error; end
    # +StepContext.from_json+ got data that is not a step context.
    class InvalidContextError < Error; end

    # A template callable names no loadable handler class.
    class HandlerNotFoundError < Error
      attr_reader :callable_name, :reason

      def initialize(callable_name, reason)
        super("No handler registered for #{callable_name}: #{reason}")
        @callable_name = callable_name
        @reason = reason
      end
    end

    # Creating a task failed (spec §0.3). +code+ is INVALID_REQUEST, TEMPLATE_NOT_FOUND,
    # IDEMPOTENCY_CONFLICT, INVALID_TASK_INPUT, or ENGINE_UNAVAILABLE / INTERNAL_ERROR when
    # +transient+ (trying again may help).
    class TaskCreationError < Error
      attr_reader :code, :field, :details, :transient

      # The native extension builds it through this (positional arguments only).
      def self.from_native(code, message, field, details, transient)
        new(code, message, field: field, details: details, transient: transient)
      end

      def initialize(code, message, field: nil, details: [], transient: false)
        super("#{code}: #{message}")
        @code = code
        @reason = message
        @field = field
        @details = Array(details)
        @transient = transient ? true : false
      end

      # The engine's message without the code prefix.
      def reason
        @reason
      end

      def transient?
        @transient
      end
    end

    # The REST API answered a client call with an error (other than task creation).
    class ApiError < Error
      attr_reader :status, :code, :field, :reason

      def initialize(status, code, message, field: nil)
        super("#{status} #{code}: #{message}")
        @status = status
        @code = code
        @reason = message
        @field = field
      end
    end

    # No task has this uuid.
    class TaskNotFoundError < ApiError; end

    # 401 +UNAUTHENTICATED+: the server asks for an API token and none was sent, or the one sent
    # is unknown, expired or revoked (+reason+ says which). Pass +token:+ or set +TASKER_TOKEN+.
    class AuthenticationError < ApiError; end

    # 403 +FORBIDDEN+: the token lacks the scope this call needs; +scope+ names it (for example
    # +payments:write+).
    class PermissionDeniedError < ApiError
      attr_reader :scope

      def initialize(status, code, message, field: nil, scope: nil)
        super(status, code, message, field: field)
        @scope = scope
      end
    end
    # The server could not be reached or answered 5xx.
    class ServerUnavailableError < ApiError; end

    # +Client#wait_for_task+ gave up before the task reached a final state.
    class WaitTimeoutError < Error
      attr_reader :task_uuid, :timeout, :last_status

      def initialize(task_uuid, timeout, last_status)
        super("task #{task_uuid} not finished after #{timeout}s (last status: #{last_status.inspect})")
        @task_uuid = task_uuid
        @timeout = timeout
        @last_status = last_status
      end
    end

    # Native error kind (+TaskerCore::Native.error_kinds+) -> the exception raised for it.
    NATIVE_ERROR_KINDS = {
      "config" => ConfigurationError,
      "template" => TemplateError,
      "store" => DatabaseError,
      "database" => DatabaseError,
      "engine" => EngineError,
      "io" => WorkerIOError,
      "invalid_context" => InvalidContextError,
      "task_creation" => TaskCreationError
    }.freeze
  end
end
