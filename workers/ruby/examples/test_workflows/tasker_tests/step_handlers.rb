# frozen_string_literal: true

require "tasker_core"

# Handlers of the engine's own test workflows (fixtures/task_templates/ruby/tests/), the Ruby twins
# of the Rust tests::* handlers (workers/rust/src/handlers/test_workflows.rs) and of the Python
# tasker_tests.step_handlers: a linear chain and a diamond doing small integer arithmetic, so
# every result proves which dependency results it saw.
#
# Each handler first applies behaviors.<step_name> of the task input:
# {"mode" => "permanent"}, {"mode" => "retryable", "retry_after" => s?},
# {"mode" => "fail_until_attempt", "attempt" => n}, {"mode" => "sleep", "ms" => n},
# {"mode" => "panic"} (raises a plain exception, which the worker records as UNHANDLED_EXCEPTION).
#
# Numbers are read as the Rust handlers read them: an input or dependency value must be an Integer
# that fits 64 bits (as_i64), and retry_after / attempt / ms a non-negative one (as_u64); a Float,
# even 2.0, is not an integer here.
module TaskerTests
  module StepHandlers
    I64_RANGE = (-(1 << 63))..((1 << 63) - 1)
    U64_RANGE = 0..((1 << 64) - 1)

    module_function

    def i64(value)
      value.is_a?(Integer) && I64_RANGE.cover?(value) ? value : nil
    end

    def u64(value)
      value.is_a?(Integer) && U64_RANGE.cover?(value) ? value : nil
    end

    # Applies behaviors.<step_name> of the input; returning means "go on and compute".
    def apply_behavior(ctx)
      behaviors = ctx.get_input("behaviors")
      b = behaviors.is_a?(Hash) ? behaviors[ctx.step_name] : nil
      return unless b.is_a?(Hash)

      mode = b["mode"].is_a?(String) ? b["mode"] : ""
      case mode
      when "permanent"
        raise TaskerCore::Errors::PermanentError.new(
          "step #{ctx.step_name} failed permanently", error_code: "TEST_PERMANENT", context: { "attempt" => ctx.attempt }
        )
      when "retryable"
        raise TaskerCore::Errors::RetryableError.new(
          "step #{ctx.step_name} failed, try again", error_code: "TEST_RETRYABLE", retry_after: u64(b["retry_after"])
        )
      when "fail_until_attempt"
        n = u64(b["attempt"]) || 2
        if ctx.attempt < n
          raise TaskerCore::Errors::RetryableError.new("attempt #{ctx.attempt} is too early",
                                                       error_code: "TEST_RETRYABLE")
        end
      when "sleep"
        sleep((u64(b["ms"]) || 0) / 1000.0)
      when "panic"
        raise "step #{ctx.step_name} was told to panic"
      else
        raise TaskerCore::Errors::PermanentError.new("unknown test behavior #{mode.inspect}",
                                                     error_code: "TEST_BAD_BEHAVIOR")
      end
    end

    def int_input(ctx, key)
      v = i64(ctx.get_input(key))
      if v.nil?
        raise TaskerCore::Errors::PermanentError.new("input #{key} must be an integer", error_code: "TEST_BAD_INPUT")
      end

      v
    end

    def dep_value(ctx, step)
      v = i64(ctx.get_dependency_field(step, "value"))
      if v.nil?
        raise TaskerCore::Errors::PermanentError.new("dependency #{step} has no integer value",
                                                     error_code: "TEST_MISSING_DEPENDENCY")
      end

      v
    end

    # A handler that applies its step's behaviour, then returns {"value" => compute(ctx), "attempt"}.
    class Arithmetic < TaskerCore::StepHandler::Base
      def call(context)
        StepHandlers.apply_behavior(context)
        success(result: { "value" => compute(context), "attempt" => context.attempt })
      end

      def compute(_context)
        raise NotImplementedError, "#{self.class.name} must implement compute(context)"
      end
    end

    # linear: a = n + 1, b = a * 2, c = b - 3, d = c * c (, e = d + 1 in version 2)
    class LinearAHandler < Arithmetic
      def compute(ctx)
        StepHandlers.int_input(ctx, "n") + 1
      end
    end

    class LinearBHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "a") * 2
      end
    end

    class LinearCHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "b") - 3
      end
    end

    class LinearDHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "c")**2
      end
    end

    class LinearEHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "d") + 1
      end
    end

    # diamond: start = n, left = start * 2, right = start + 10, end = left + right
    class DiamondStartHandler < Arithmetic
      def compute(ctx)
        StepHandlers.int_input(ctx, "n")
      end
    end

    class DiamondLeftHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "start") * 2
      end
    end

    class DiamondRightHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "start") + 10
      end
    end

    class DiamondEndHandler < Arithmetic
      def compute(ctx)
        StepHandlers.dep_value(ctx, "left") + StepHandlers.dep_value(ctx, "right")
      end
    end
  end
end
