# frozen_string_literal: true

require "tasker_tests/step_handlers"

# The engine's own test workflow handlers (examples/test_workflows/tasker_tests/step_handlers.rb):
# their arithmetic, the behaviors modes, and the templates under fixtures/task_templates/ruby/tests
# that name them. The Ruby twins of workers/rust/src/handlers/test_workflows.rs.
RSpec.describe "TaskerTests::StepHandlers" do
  handlers = TaskerTests::StepHandlers
  templates_dir = File.expand_path("../../../fixtures/task_templates/ruby/tests", __dir__)

  def run_attempt(handler_class, step_name:, input: {}, deps: {}, attempt: 1, max_attempts: 3)
    ctx = TaskerCore::Testing.build_context(step_name: step_name, namespace: "tasker_tests_rb", input: input,
                                            dependency_results: deps, attempt: attempt, max_attempts: max_attempts)
    TaskerCore::Testing.run_handler(handler_class.new, ctx)
  end

  def value_of(result)
    expect(result.success?).to be(true), "expected success, got #{result.error.inspect}"
    result.result["value"]
  end

  describe "arithmetic" do
    it "computes the linear chain a = n + 1, b = a * 2, c = b - 3, d = c * c, e = d + 1" do
      input = { "n" => 4 }
      a = value_of(run_attempt(handlers::LinearAHandler, step_name: "a", input: input))
      b = value_of(run_attempt(handlers::LinearBHandler, step_name: "b", input: input, deps: { "a" => { "value" => a } }))
      c = value_of(run_attempt(handlers::LinearCHandler, step_name: "c", input: input, deps: { "b" => { "value" => b } }))
      d = value_of(run_attempt(handlers::LinearDHandler, step_name: "d", input: input, deps: { "c" => { "value" => c } }))
      e = value_of(run_attempt(handlers::LinearEHandler, step_name: "e", input: input, deps: { "d" => { "value" => d } }))
      expect([a, b, c, d, e]).to eq([5, 10, 7, 49, 50])
    end

    it "computes the diamond start = n, left = start * 2, right = start + 10, end = left + right" do
      input = { "n" => 3 }
      start = value_of(run_attempt(handlers::DiamondStartHandler, step_name: "start", input: input))
      left = value_of(run_attempt(handlers::DiamondLeftHandler, step_name: "left", deps: { "start" => { "value" => start } }))
      right = value_of(run_attempt(handlers::DiamondRightHandler, step_name: "right",
                                   deps: { "start" => { "value" => start } }))
      finish = value_of(run_attempt(handlers::DiamondEndHandler, step_name: "end",
                                    deps: { "left" => { "value" => left }, "right" => { "value" => right } }))
      expect([start, left, right, finish]).to eq([3, 6, 13, 19])
    end

    it "returns exactly the value and the attempt, as integers" do
      r = run_attempt(handlers::LinearDHandler, step_name: "d", deps: { "c" => { "value" => 7 } }, attempt: 2)
      expect(r.result).to eq({ "value" => 49, "attempt" => 2 })
      expect(r.result.values).to all(be_a(Integer))
    end

    [nil, "4", 4.0, true, 2**63].each do |n|
      it "fails permanently with TEST_BAD_INPUT when n is not a 64-bit integer (#{n.inspect})" do
        input = n.nil? ? {} : { "n" => n }
        r = run_attempt(handlers::LinearAHandler, step_name: "a", input: input)
        expect(r.error).to eq({ "message" => "input n must be an integer", "error_code" => "TEST_BAD_INPUT",
                                "retryable" => false, "retry_after" => nil, "context" => {} })
      end
    end

    [{}, { "a" => {} }, { "a" => { "value" => "5" } }, { "a" => { "value" => 5.0 } }, { "b" => { "value" => 5 } }]
      .each do |deps|
      it "fails permanently with TEST_MISSING_DEPENDENCY without an integer dependency value (#{deps.inspect})" do
        r = run_attempt(handlers::LinearBHandler, step_name: "b", deps: deps)
        expect(r.error).to eq({ "message" => "dependency a has no integer value",
                                "error_code" => "TEST_MISSING_DEPENDENCY", "retryable" => false,
                                "retry_after" => nil, "context" => {} })
      end
    end

    it "names the first missing branch of the diamond end" do
      r = run_attempt(handlers::DiamondEndHandler, step_name: "end", deps: { "right" => { "value" => 1 } })
      expect(r.error["message"]).to eq("dependency left has no integer value")
    end
  end

  describe "behaviors" do
    # Step a of the linear chain (n = 1, so a computes 2) with behavior as behaviors.a.
    def with_behavior(behavior, attempt_number: 1)
      run_attempt(TaskerTests::StepHandlers::LinearAHandler, step_name: "a",
                  input: { "n" => 1, "behaviors" => { "a" => behavior } }, attempt: attempt_number)
    end

    it "fails permanently with the attempt in the context in permanent mode" do
      r = with_behavior({ "mode" => "permanent" }, attempt_number: 2)
      expect(r.error).to eq({ "message" => "step a failed permanently", "error_code" => "TEST_PERMANENT",
                              "retryable" => false, "retry_after" => nil, "context" => { "attempt" => 2 } })
    end

    it "fails retryably with the given retry_after in retryable mode" do
      r = with_behavior({ "mode" => "retryable", "retry_after" => 3 })
      expect(r.error).to eq({ "message" => "step a failed, try again", "error_code" => "TEST_RETRYABLE",
                              "retryable" => true, "retry_after" => 3, "context" => {} })
    end

    [nil, -1, 2.5, "3"].each do |retry_after|
      it "leaves retry_after null unless it is a non-negative integer (#{retry_after.inspect})" do
        behavior = { "mode" => "retryable" }
        behavior["retry_after"] = retry_after unless retry_after.nil?
        r = with_behavior(behavior)
        expect(r.error["retryable"]).to be(true)
        expect(r.error["retry_after"]).to be_nil
      end
    end

    it "fails retryably before the given attempt and succeeds on it in fail_until_attempt mode" do
      behavior = { "mode" => "fail_until_attempt", "attempt" => 3 }
      [1, 2].each do |n|
        r = with_behavior(behavior, attempt_number: n)
        expect(r.error).to eq({ "message" => "attempt #{n} is too early", "error_code" => "TEST_RETRYABLE",
                                "retryable" => true, "retry_after" => nil, "context" => {} })
      end
      expect(with_behavior(behavior, attempt_number: 3).result).to eq({ "value" => 2, "attempt" => 3 })
    end

    it "fails only the first attempt when fail_until_attempt names no attempt" do
      behavior = { "mode" => "fail_until_attempt" }
      expect(with_behavior(behavior, attempt_number: 1).error["error_code"]).to eq("TEST_RETRYABLE")
      expect(with_behavior(behavior, attempt_number: 2).result).to eq({ "value" => 2, "attempt" => 2 })
    end

    it "sleeps the given milliseconds, then computes, in sleep mode" do
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      r = with_behavior({ "mode" => "sleep", "ms" => 30 })
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      expect(r.result).to eq({ "value" => 2, "attempt" => 1 })
      expect(elapsed).to be >= 0.03
    end

    it "raises a plain exception that the worker records as UNHANDLED_EXCEPTION in panic mode" do
      r = with_behavior({ "mode" => "panic" })
      expect(r.error).to eq({ "message" => "RuntimeError: step a was told to panic",
                              "error_code" => "UNHANDLED_EXCEPTION", "retryable" => true, "retry_after" => nil,
                              "context" => {} })
    end

    [["explode", '"explode"'], [nil, '""'], [7, '""']].each do |mode, shown|
      it "fails permanently with TEST_BAD_BEHAVIOR for an unknown mode (#{mode.inspect})" do
        behavior = mode.nil? ? {} : { "mode" => mode }
        r = with_behavior(behavior)
        expect(r.error).to eq({ "message" => "unknown test behavior #{shown}", "error_code" => "TEST_BAD_BEHAVIOR",
                                "retryable" => false, "retry_after" => nil, "context" => {} })
      end
    end

    it "applies only the behavior of its own step" do
      r = run_attempt(handlers::LinearAHandler, step_name: "a",
                      input: { "n" => 1, "behaviors" => { "b" => { "mode" => "permanent" } } })
      expect(r.result).to eq({ "value" => 2, "attempt" => 1 })
    end

    [[], "permanent", { "a" => "permanent" }].each do |behaviors|
      it "ignores behaviors that are not objects (#{behaviors.inspect})" do
        r = run_attempt(handlers::LinearAHandler, step_name: "a", input: { "n" => 1, "behaviors" => behaviors })
        expect(r.result).to eq({ "value" => 2, "attempt" => 1 })
      end
    end

    it "applies the behavior before reading the input" do
      r = run_attempt(handlers::LinearBHandler, step_name: "b",
                      input: { "behaviors" => { "b" => { "mode" => "permanent" } } })
      expect(r.error["error_code"]).to eq("TEST_PERMANENT")
    end
  end

  describe "templates" do
    files = %w[crash_workflow.yaml diamond_workflow.yaml linear_workflow_v1.yaml linear_workflow_v2.yaml
               slow_workflow.yaml]

    it "has one ruby template per Rust test workflow" do
      rust_dir = File.expand_path("../../rust/tests", templates_dir)
      expect(Dir.children(templates_dir).sort).to eq(Dir.children(rust_dir).sort)
      expect(Dir.children(templates_dir).sort).to eq(files)
    end

    files.each do |file|
      it "registers #{file} in tasker_tests_rb with callables the worker's registry resolves" do
        text = File.read(File.join(templates_dir, file))
        expect(text).to match(/^namespace_name: tasker_tests_rb$/)
        callables = text.scan(/callable:\s*"?([A-Za-z:_]+)"?/).flatten
        expect(callables).not_to be_empty
        registry = TaskerCore::Registry.new
        callables.each do |callable|
          expect(callable).to match(/\ATaskerTests::StepHandlers::(Linear[A-E]|Diamond(Start|Left|Right|End))Handler\z/)
          expect(registry.resolve(callable)).to be_a(TaskerCore::StepHandler::Base)
        end
      end
    end
  end
end
