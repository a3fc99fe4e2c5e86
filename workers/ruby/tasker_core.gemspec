# frozen_string_literal: true

require_relative "lib/tasker_core/version"

Gem::Specification.new do |spec|
  spec.name = "tasker_core"
  spec.version = TaskerCore::VERSION
  spec.summary = "Tasker worker for Ruby step handlers (native core via magnus)"
  spec.description = "Runs Ruby step handlers for the Tasker workflow engine: StepContext, typed errors, " \
                     "the hosted worker runtime, a tasker-worker executable and a REST client."
  spec.authors = ["Tasker"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  spec.files = Dir["lib/**/*.rb", "exe/*", "ext/tasker_native/extconf.rb", "README.md"] +
               # The Rust sources the extension is built from, staged by tools/ruby-setup.sh.
               Dir["ext/tasker_native/workspace/**/*"].reject { |f| File.directory?(f) || f.include?("/target/") }
  spec.bindir = "exe"
  spec.executables = ["tasker-worker"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/tasker_native/extconf.rb"]
end
