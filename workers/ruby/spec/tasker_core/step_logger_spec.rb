# frozen_string_literal: true

require "json"
require "logger"
require "open3"
require "rbconfig"

RSpec.describe TaskerCore::StepContext::StepLogger do
  let(:context) do
    TaskerCore::StepContext.from_json({ "step_name" => "charge", "namespace" => "billing_rb", "correlation_id" => "corr-7" })
  end

  it "is a ::Logger with levels, the block form and progname" do
    logger = context.logger
    expect(logger).to be_a(Logger)
    expect(logger).to equal(context.logger)
    seen = []
    allow(context).to receive(:_log) { |level, text, fields| seen << [level, text, fields] }
    logger.info("charged 5")
    logger.warn("gateway") { "refused" }
    logger.level = Logger::WARN
    logger.info { raise "a filtered block is never called" }
    logger.error(ArgumentError.new("bad card"))
    logger.progname = "billing"
    logger.fatal("down")
    expect(seen[0]).to eq(["info", "charged 5", nil])
    expect(seen[1]).to eq(["warn", "refused", { "progname" => "gateway" }])
    expect(seen[2][0..1]).to eq(["error", "bad card (ArgumentError)\n"])
    expect(seen[3]).to eq(["error", "down", { "progname" => "billing" }])
    expect(seen.size).to eq(4)
  end

  it "writes to the core's log as JSON with the correlation fields" do
    lib = File.expand_path("../../lib", __dir__)
    script = <<~RUBY
      require "tasker_core"
      TaskerCore::Native.init_logging(true)
      ctx = TaskerCore::StepContext.from_json({ "step_name" => "charge", "namespace" => "billing_rb", "correlation_id" => "corr-7" })
      ctx.logger.warn("gateway") { "refused" }
    RUBY
    _, err, status = Open3.capture3(RbConfig.ruby, "-I", lib, "-e", script)
    expect(status.success?).to be(true), err
    line = JSON.parse(err.lines.find { |l| l.start_with?("{") })
    expect(line["level"]).to eq("WARN")
    expect(line).to include("message" => "refused", "correlation_id" => "corr-7", "step_name" => "charge",
                            "namespace" => "billing_rb")
    expect(line["fields"]).to eq("progname" => "gateway")
  end
end
