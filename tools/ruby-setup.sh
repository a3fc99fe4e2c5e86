#!/usr/bin/env bash
# Builds the Ruby worker gem the way it ships and installs it the way a user would:
#   1. stages the Rust sources the extension needs (core crates + bindings/ruby + Cargo.lock) under
#      workers/ruby/ext/tasker_native/workspace, so the gem is self-contained;
#   2. `gem build` -> workers/ruby/tasker_core-<version>.gem (a source gem);
#   3. `gem install --local` into the checkout's private gem home .gems (compiles the extension);
#   4. copies the installed extension next to the sources (workers/ruby/lib/tasker_core) for RSpec.
# A missing Ruby toolchain is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
for tool in ruby gem rspec; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ruby-setup: $tool not found (apt install ruby-dev ruby-rspec libclang-dev)" >&2
    exit 1
  fi
done

stage=workers/ruby/ext/tasker_native/workspace
rm -rf "$stage"
mkdir -p "$stage/bindings"
cp -r core "$stage/core"
cp -r bindings/ruby "$stage/bindings/ruby"
cp Cargo.lock "$stage/Cargo.lock"
# The root manifest with only the members the extension needs.
ruby -e '
  src = File.read(ARGV[0])
  members = Dir.children(File.join(ARGV[1], "core")).sort.map { |c| "    \"core/#{c}\"," } + ["    \"bindings/ruby\","]
  src = src.sub(/^members = \[.*?^\]/m, "members = [\n#{members.join("\n")}\n]")
  src = src.sub(/^# `cargo test` at the root.*?\n/, "")
  src = src.sub(/^default-members = \[.*?^\]\n/m, "")
  File.write(File.join(ARGV[1], "Cargo.toml"), src)
' Cargo.toml "$stage"
find "$stage" -name target -prune -exec rm -rf {} +

version=$(ruby -Iworkers/ruby/lib -e 'require "tasker_core/version"; print TaskerCore::VERSION')
(cd workers/ruby && gem build -q tasker_core.gemspec -o "tasker_core-$version.gem")
gem_home="$root/.gems"
# The extension's dependencies are the ones the other bindings build: share the checkout's cargo
# target dir (only the staged crates themselves compile again).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
GEM_HOME="$gem_home" gem install -q --local --no-document --install-dir "$gem_home" \
  "workers/ruby/tasker_core-$version.gem"
so=$(find "$gem_home" -path "*tasker_core-$version*" -name tasker_native.so | head -1)
if [ -z "$so" ]; then
  echo "ruby-setup: the installed gem has no tasker_native.so" >&2
  exit 1
fi
cp "$so" workers/ruby/lib/tasker_core/tasker_native.so
GEM_HOME="$gem_home" GEM_PATH="$gem_home:$(gem env gempath)" ruby -e 'require "tasker_core"; puts "ruby-setup: tasker_core #{TaskerCore::VERSION} (native #{TaskerCore::Native::VERSION}) on ruby #{RUBY_VERSION}"'
