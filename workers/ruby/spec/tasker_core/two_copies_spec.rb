# frozen_string_literal: true

require "tmpdir"

# Handlers built against another copy of the gem (vendored under another namespace, another
# version on the load path) run on this copy's worker exactly as its own: results,
# PermanentError and RetryableError are recognised by their brand, not by is_a? alone.
RSpec.describe "handlers of another copy of the gem" do
  before(:all) do
    # The gem's Ruby layer loaded again as TaskerCoreCopy, sharing this copy's native classes.
    lib = File.expand_path("../../lib/tasker_core", __dir__)
    copy = Module.new
    Object.const_set(:TaskerCoreCopy, copy)
    copy.const_set(:Native, TaskerCore::Native)
    %w[errors step_handler].each do |file|
      source = File.read(File.join(lib, "#{file}.rb")).gsub("TaskerCore", "TaskerCoreCopy")
      Object.class_eval(source, "copy/#{file}.rb")
    end
    base = TaskerCoreCopy::StepHandler::Base
    errors = TaskerCoreCopy::Errors
    handlers = Module.new
    Object.const_set(:CopyHandlers, handlers)
    handlers.const_set(:OkHandler, Class.new(base) {
      def call(context) = success(result: { "n" => context.get_input("n") }, metadata: { "by" => "copy" })
    })
    handlers.const_set(:PermanentHandler, Class.new(base) {
      define_method(:call) do |_context|
        raise errors::PermanentError.new("no card", error_code: "CARD_MISSING", context: { "k" => 1 })
      end
    })
    handlers.const_set(:RetryHandler, Class.new(base) {
      define_method(:call) do |_context|
        raise errors::RetryableError.new("busy", error_code: "GATEWAY_BUSY", retry_after: 7)
      end
    })
  end

  after(:all) do
    Object.send(:remove_const, :TaskerCoreCopy)
    Object.send(:remove_const, :CopyHandlers)
  end

  let(:context) { TaskerCore::StepContext.from_json({ "step_name" => "s", "input" => { "n" => 3 } }) }
  let(:registry) { TaskerCore::Registry.new }

  it "are registered and their results and errors classified as this copy's" do
    expect(CopyHandlers::OkHandler.ancestors).not_to include(TaskerCore::StepHandler::Base)
    registry.register("CopyHandlers::OkHandler", CopyHandlers::OkHandler)
    registry.register("CopyHandlers::PermanentHandler", CopyHandlers::PermanentHandler)
    registry.register("CopyHandlers::RetryHandler", CopyHandlers::RetryHandler)
    run = ->(name) { TaskerCore::Execution.execute(registry.resolve(name), context).to_envelope }
    expect(run.call("CopyHandlers::OkHandler")).to eq("success" => true, "result" => { "n" => 3 }, "metadata" => { "by" => "copy" })
    expect(run.call("CopyHandlers::PermanentHandler")).to eq(
      "success" => false, "metadata" => {},
      "error" => { "message" => "no card", "error_code" => "CARD_MISSING", "retryable" => false, "retry_after" => nil,
                   "context" => { "k" => 1 } }
    )
    expect(run.call("CopyHandlers::RetryHandler")["error"]).to include("error_code" => "GATEWAY_BUSY", "retryable" => true,
                                                                       "retry_after" => 7)
  end
end
