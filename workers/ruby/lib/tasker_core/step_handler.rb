# frozen_string_literal: true

module TaskerCore
  module StepHandler
    # The outcome of one attempt. Build it with {Base#success} or {Base#failure} (or raise
    # {Errors::PermanentError} / {Errors::RetryableError}).
    class Result
      # Marks the result class of any copy of this gem (a vendored copy, another version on the
      # load path): the worker recognises results by it, not by +is_a?+ alone.
      TASKER_BRAND = "tasker.StepHandlerResult/1"

      attr_reader :result, :error, :metadata

      # True for a result of this copy of the gem or of any other.
      def self.result?(value)
        value.is_a?(Result) || (value.class.const_defined?(:TASKER_BRAND, false) &&
                                value.class::TASKER_BRAND == TASKER_BRAND && value.respond_to?(:to_envelope))
      end

      # This copy's result for a result of any copy.
      def self.from_any(value)
        return value if value.is_a?(Result)

        envelope = value.to_envelope
        if envelope["success"]
          new(success: true, result: envelope["result"], metadata: envelope["metadata"] || {})
        else
          new(success: false, error: envelope["error"])
        end
      end

      def initialize(success:, result: nil, error: nil, metadata: {})
        @success = success
        @result = result
        @error = error
        @metadata = metadata
        freeze
      end

      def success?
        @success
      end

      def self.from_error(error)
        new(success: false, error: error.to_h)
      end

      # The §0.6 envelope the engine records.
      def to_envelope
        if success?
          { "success" => true, "result" => result || {}, "metadata" => metadata || {} }
        else
          { "success" => false, "error" => error, "metadata" => {} }
        end
      end
    end

    # Base class of Ruby step handlers.
    #
    # A template callable +Ecommerce::StepHandlers::ValidateCartHandler+ names a subclass; the
    # worker creates one instance per callable and calls {#call} for every attempt, possibly from
    # several threads at once, so keep per-attempt state in local variables.
    #
    #   class ChargeHandler < TaskerCore::StepHandler::Base
    #     def call(context)
    #       amount = context.get_input("amount")
    #       raise TaskerCore::Errors::PermanentError.new("amount is required", error_code: "MISSING_AMOUNT") if amount.nil?
    #
    #       success(result: { "charged" => amount })
    #     end
    #   end
    class Base
      # Marks the handler base class of any copy of this gem; see {.handler_class?}.
      TASKER_BRAND = "tasker.StepHandler/1"

      # True for a subclass of Base of this copy of the gem or of any other.
      def self.handler_class?(value)
        value.is_a?(Class) && (value < Base || (value.const_defined?(:TASKER_BRAND) && value::TASKER_BRAND == TASKER_BRAND))
      end

      def call(_context)
        raise NotImplementedError, "#{self.class.name} must implement call(context)"
      end

      # A successful attempt with the normative +result+ and free-form +metadata+.
      def success(result:, metadata: {})
        Result.new(success: true, result: result.to_h, metadata: (metadata || {}).to_h)
      end

      # A failed attempt, as if the matching typed error had been raised.
      def failure(message:, error_code: nil, retryable: false, retry_after: nil, context: {})
        error =
          if retryable
            Errors::RetryableError.new(message, error_code: error_code, retry_after: retry_after, context: context)
          else
            raise ArgumentError, "only retryable failures may set retry_after" unless retry_after.nil?

            Errors::PermanentError.new(message, error_code: error_code, context: context)
          end
        Result.from_error(error)
      end
    end
  end
end
