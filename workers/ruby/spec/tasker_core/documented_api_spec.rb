# frozen_string_literal: true

# The YARD documentation of the native classes matches the loaded extension: every method a
# `@!method` tag documents exists, and every public method the extension defines is documented
# (or is Ruby code with its own doc comment).
RSpec.describe "the documented native API" do
  def documented(file)
    File.read(File.expand_path("../../lib/tasker_core/#{file}", __dir__))
        .scan(/^\s*#\s*@!method\s+([a-z_?!]+)/).flatten
  end

  it "documents exactly the public methods of the native StepContext" do
    names = documented("step_context.rb")
    expect(names).not_to be_empty
    native = TaskerCore::StepContext.public_instance_methods(false).map(&:to_s).reject { |m| m.start_with?("_") }
    ruby_defined = %w[get_dependency_field create_task logger]
    expect(names).to match_array(native - ruby_defined)
    names.each { |m| expect(TaskerCore::StepContext.method_defined?(m)).to be(true), m }
  end

  it "documents exactly the public methods of the native DispatchedStep" do
    names = documented("worker.rb")
    native = TaskerCore::Native::DispatchedStep.public_instance_methods(false).map(&:to_s).reject { |m| m.start_with?("_") }
    expect(names).to match_array(native)
  end
end
