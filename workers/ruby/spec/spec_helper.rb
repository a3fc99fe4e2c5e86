# frozen_string_literal: true

# RSpec puts lib/ on $LOAD_PATH; the example handlers load the way the worker loads them, from the
# handler directories on $LOAD_PATH.
examples = File.expand_path("../examples", __dir__)
[File.join(examples, "blog"), File.join(examples, "test_workflows")].each do |dir|
  $LOAD_PATH.unshift(dir) unless $LOAD_PATH.include?(dir)
end

require "tasker_core"
require "tasker_core/testing"

RSpec.configure do |config|
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.disable_monkey_patching!
  config.order = :random
  Kernel.srand config.seed
end
