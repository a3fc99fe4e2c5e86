# frozen_string_literal: true

# The Ruby blog templates (fixtures/task_templates/ruby/blog) name handlers that the worker's
# registry loads the way it does in production: by requiring the underscored module path
# (customer_success/step_handlers) from $LOAD_PATH, then resolving the constant.
RSpec.describe "the ruby blog templates" do
  blog_dir = File.expand_path("../../../../fixtures/task_templates/ruby/blog", __dir__)
  expected_modules = {
    "analytics_pipeline.yaml" => "DataPipeline",
    "customer_success_process_refund.yaml" => "CustomerSuccess",
    "ecommerce_order_processing.yaml" => "Ecommerce",
    "payments_process_refund_v1_0_0.yaml" => "Payments",
    "payments_process_refund_v2_1_0.yaml" => "Payments",
    "user_registration.yaml" => "Microservices"
  }

  it "are the six blog workflows" do
    expect(Dir.children(blog_dir).sort).to eq(expected_modules.keys.sort)
  end

  expected_modules.each do |file, mod|
    it "resolves every callable of #{file} through the worker's registry" do
      text = File.read(File.join(blog_dir, file))
      expect(text).to match(/^namespace_name: [a-z_]+_rb$/)
      callables = text.scan(/callable:\s*"?([A-Za-z:_]+)"?/).flatten
      expect(callables).not_to be_empty
      registry = TaskerCore::Registry.new
      callables.each do |callable|
        expect(callable).to start_with("#{mod}::StepHandlers::")
        expect(registry.resolve(callable)).to be_a(TaskerCore::StepHandler::Base)
      end
    end
  end
end
