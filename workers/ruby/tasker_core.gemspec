# frozen_string_literal: true

require_relative "lib/tasker_core/version"

staged = File.expand_path("ext/tasker_native/workspace/bindings/ruby/Cargo.toml", __dir__)
unless File.file?(staged)
  # The extension is compiled from Rust sources carried in the gem; without them the gem would
  # build but never install.
  abort "tasker_core.gemspec: the Rust sources are not staged under ext/tasker_native/workspace; " \
        "build the gem with tools/ruby-setup.sh (cargo make ruby-setup), which stages them and runs gem build"
end

Gem::Specification.new do |spec|
  spec.name = "tasker_core"
  spec.version = TaskerCore::VERSION
  spec.summary = "Tasker worker for Ruby step handlers (native core via magnus)"
  spec.description = "Runs Ruby step handlers for the Tasker workflow engine: StepContext, typed errors, " \
                     "the hosted worker runtime, a tasker-worker executable and a REST client."
  spec.authors = ["The Tasker authors"]
  spec.license = "MIT"
  spec.homepage = "https://github.com/tasker-dev/tasker"
  spec.metadata = {
    "homepage_uri" => spec.homepage,
    "source_code_uri" => "https://github.com/tasker-dev/tasker/tree/main/workers/ruby",
    "documentation_uri" => "https://github.com/tasker-dev/tasker/blob/main/workers/ruby/README.md",
    "bug_tracker_uri" => "https://github.com/tasker-dev/tasker/issues",
    "rubygems_mfa_required" => "true"
  }
  spec.required_ruby_version = ">= 3.1"

  spec.files = Dir["lib/**/*.rb", "exe/*", "ext/tasker_native/extconf.rb", "README.md", "LICENSE"] +
               # The Rust sources the extension is built from, staged by tools/ruby-setup.sh.
               Dir["ext/tasker_native/workspace/**/*"].reject { |f| File.directory?(f) || f.include?("/target/") }
  spec.bindir = "exe"
  spec.executables = ["tasker-worker"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/tasker_native/extconf.rb"]
end
