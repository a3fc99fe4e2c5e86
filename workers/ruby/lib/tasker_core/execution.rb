# frozen_string_literal: true

module TaskerCore
  # Runs one attempt of a handler the way the worker does: typed errors become failures, any other
  # exception becomes an +UNHANDLED_EXCEPTION+ failure, and a wrong return value is reported.
  module Execution
    UNHANDLED_EXCEPTION = "UNHANDLED_EXCEPTION"

    module_function

    # The failure recorded for an unexpected exception: "<class>: <message>", retryable.
    def unhandled(exception_class, message)
      StepHandler::Result.new(
        success: false,
        error: {
          "message" => "#{exception_class}: #{message}",
          "error_code" => UNHANDLED_EXCEPTION,
          "retryable" => true,
          "retry_after" => nil,
          "context" => {}
        }
      )
    end

    # One attempt of +handler+ on +context+; never raises for handler errors (StandardError and
    # ScriptError such as NotImplementedError). Interrupts, exits and signals propagate.
    def execute(handler, context)
      outcome =
        begin
          handler.call(context)
        rescue StandardError, ScriptError => e
          # A typed error of this copy of the gem or of another one (recognised by its brand).
          return StepHandler::Result.new(success: false, error: e.to_h) if Errors::StepError.step_error?(e)

          return unhandled(e.class.name || e.class.inspect, e.message)
        end
      return StepHandler::Result.from_any(outcome) if StepHandler::Result.result?(outcome)

      unhandled("InvalidResult",
                "#{handler.class.name}#call returned #{outcome.class.name}, expected TaskerCore::StepHandler::Result")
    end
  end
end
