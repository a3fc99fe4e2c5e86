# frozen_string_literal: true

require "open3"
require "fileutils"
require "rbconfig"
require "tmpdir"

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

RSpec.describe "tasker_core.gemspec" do
  gem_dir = File.expand_path("../..", __dir__)

  it "builds a gem without warnings from the staged sources, and names the command when they are not staged" do
    Dir.mktmpdir do |dir|
      out, status = Open3.capture2e("gem", "build", File.join(gem_dir, "tasker_core.gemspec"), "-o", File.join(dir, "t.gem"),
                                    chdir: gem_dir)
      expect(status.success?).to be(true), out
      expect(out).not_to match(/WARNING/i)
      # A copy of the gem's tree without the staged Rust sources.
      bare = File.join(dir, "bare")
      FileUtils.mkdir_p(bare)
      %w[tasker_core.gemspec lib exe README.md LICENSE].each { |f| FileUtils.cp_r(File.join(gem_dir, f), bare) }
      FileUtils.mkdir_p(File.join(bare, "ext/tasker_native"))
      FileUtils.cp(File.join(gem_dir, "ext/tasker_native/extconf.rb"), File.join(bare, "ext/tasker_native"))
      out, status = Open3.capture2e("gem", "build", "tasker_core.gemspec", chdir: bare)
      expect(status.success?).to be(false)
      expect(out).to include("tools/ruby-setup.sh")
      expect(Dir.glob(File.join(bare, "*.gem"))).to be_empty
    end
  end
end
