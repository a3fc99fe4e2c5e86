# frozen_string_literal: true

module TaskerCore
  module StepHandler
    # The outcome of one attempt. Build it with {Base#success} or {Base#failure} (or raise
    # {Errors::PermanentError} / {Errors::RetryableError}).
    class Result
      attr_reader :result, :error, :metadata

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
