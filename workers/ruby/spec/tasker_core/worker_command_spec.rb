# frozen_string_literal: true

require "open3"
require "rbconfig"

RSpec.describe "the tasker-worker executable" do
  repo = File.expand_path("../../../..", __dir__)
  exe = File.expand_path("../../exe/tasker-worker", __dir__)
  lib = File.expand_path("../../lib", __dir__)

  def run_worker(exe, lib, *args, env: {})
    Open3.capture3(env, RbConfig.ruby, "-I", lib, exe, *args)
  end

  it "documents its flags" do
    out, err, status = run_worker(exe, lib, "--help")
    expect(status.exitstatus).to eq(0), err
    %w[--database-url --templates --handler-path --require --concurrency --health-bind --env].each do |flag|
      expect(out).to include(flag)
    end
  end

  it "fails fast with a typed error and exit code 2 on an unreachable database" do
    _, err, status = run_worker(exe, lib, "--database-url", "postgres://tasker@127.0.0.1:1/tasker",
                                "--templates", File.join(repo, "fixtures/task_templates/ruby"))
    expect(status.exitstatus).to eq(2)
    expect(err).to include("DatabaseError").and include("Connection refused")
  end

  it "refuses a bad concurrency as a usage error" do
    _, err, status = run_worker(exe, lib, "--concurrency", "0")
    expect(status.exitstatus).to eq(2)
    expect(err).to include("invalid value '0' for '--concurrency <N>'")
    _, err, status = run_worker(exe, lib, env: { "TASKER_WORKER_CONCURRENCY" => "many" })
    expect(status.exitstatus).to eq(2)
    expect(err).to include("invalid value 'many' for '--concurrency <N>'")
  end

  it "reports a handler file that fails to load" do
    _, err, status = run_worker(exe, lib, "--require", "no/such/handlers", "--database-url", "postgres://x@127.0.0.1:1/x")
    expect(status.exitstatus).to eq(2)
    expect(err).to include("LoadError")
  end
end
