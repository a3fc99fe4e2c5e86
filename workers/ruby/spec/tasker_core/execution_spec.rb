# frozen_string_literal: true

RSpec.describe TaskerCore::Execution do
  def handler(&body)
    Class.new(TaskerCore::StepHandler::Base) { define_method(:call, &body) }.new
  end

  let(:ctx) { TaskerCore::Testing.build_context(step_name: "s", input: { "n" => 1 }) }

  def run(h)
    TaskerCore::Testing.run_handler(h, ctx)
  end

  it "passes a success through with its result and metadata" do
    r = run(handler { |c| success(result: { "n" => c.get_input("n") + 1 }, metadata: { "took" => 1 }) })
    expect(r.to_envelope).to eq("success" => true, "result" => { "n" => 2 }, "metadata" => { "took" => 1 })
  end

  it "turns a raised PermanentError into a permanent failure" do
    r = run(handler { |_| raise TaskerCore::Errors::PermanentError.new("no", error_code: "NOPE", context: { "a" => 1 }) })
    expect(r.success?).to be(false)
    expect(r.error).to eq("message" => "no", "error_code" => "NOPE", "retryable" => false, "retry_after" => nil,
                          "context" => { "a" => 1 })
  end

  it "turns a raised RetryableError into a retryable failure with retry_after" do
    r = run(handler { |_| raise TaskerCore::Errors::RetryableError.new("later", retry_after: 5) })
    expect(r.error.values_at("error_code", "retryable", "retry_after")).to eq(["RETRYABLE_ERROR", true, 5])
  end

  it "builds the same failures with #failure" do
    r = run(handler { |_| failure(message: "m", error_code: "E", retryable: true, retry_after: 2) })
    expect(r.error).to eq("message" => "m", "error_code" => "E", "retryable" => true, "retry_after" => 2, "context" => {})
    expect { handler { |_| failure(message: "m", retry_after: 2) }.call(ctx) }.to raise_error(ArgumentError)
  end

  it "turns an unexpected exception into a retryable UNHANDLED_EXCEPTION naming its class" do
    r = run(handler { |_| raise KeyError, "key not found: \"sku\"" })
    expect(r.error).to eq("message" => "KeyError: key not found: \"sku\"", "error_code" => "UNHANDLED_EXCEPTION",
                          "retryable" => true, "retry_after" => nil, "context" => {})
    expect(run(handler { |_| 1 / 0 }).error["message"]).to eq("ZeroDivisionError: divided by 0")
  end

  it "reports a missing call and a wrong return value as UNHANDLED_EXCEPTION" do
    r = run(Class.new(TaskerCore::StepHandler::Base).new)
    expect(r.error.values_at("error_code", "retryable")).to eq(["UNHANDLED_EXCEPTION", true])
    expect(r.error["message"]).to start_with("NotImplementedError:")
    r = run(handler { |_| { "forgot" => "success" } })
    expect(r.error["message"]).to match(/\AInvalidResult: .*returned Hash, expected TaskerCore::StepHandler::Result\z/)
  end

  it "lets interrupts through" do
    expect { run(handler { |_| raise Interrupt }) }.to raise_error(Interrupt)
  end
end

RSpec.describe TaskerCore::Registry do
  subject(:registry) { described_class.new }

  it "loads a handler by requiring the file its namespace names" do
    h = registry.resolve("TaskerTests::StepHandlers::LinearAHandler")
    expect(h).to be_a(TaskerCore::StepHandler::Base)
    expect(registry.resolve("TaskerTests::StepHandlers::LinearAHandler")).to be(h)
  end

  it "underscores each namespace segment" do
    expect(described_class.feature_for("CustomerSuccess::StepHandlers")).to eq("customer_success/step_handlers")
    expect(described_class.feature_for("HTTPApi::V2Handlers")).to eq("http_api/v2_handlers")
  end

  it "prefers a registered handler" do
    custom = Class.new(TaskerCore::StepHandler::Base) { def call(_) = success(result: {}) }
    registry.register("Anything::Here::X", custom)
    expect(registry.resolve("Anything::Here::X")).to be_a(custom)
    expect { registry.register("A::B", Object) }.to raise_error(TypeError)
  end

  it "names what is wrong with an unknown callable" do
    {
      "nohandler" => /expected Module::HandlerClass/,
      "ecommerce.step_handlers.X" => /expected Module::HandlerClass/,
      "NoSuch::StepHandlers::XHandler" => %r{cannot require no_such/step_handlers},
      "TaskerTests::StepHandlers::NoSuchHandler" => /does not define TaskerTests::StepHandlers::NoSuchHandler/,
      "TaskerCore::Registry" => /is not a TaskerCore::StepHandler::Base subclass/
    }.each do |callable, reason|
      expect { registry.resolve(callable) }.to raise_error(TaskerCore::Errors::HandlerNotFoundError, reason)
    end
  end
end
