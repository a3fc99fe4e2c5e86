# frozen_string_literal: true

require "optparse"
require "logger"

module TaskerCore
  # The Ruby worker process (+tasker-worker+). The core runtime (native) claims steps, extends
  # visibility, enforces timeouts and submits results; this only runs handlers on +--concurrency+
  # threads. SIGTERM / SIGINT stop claiming; steps already running finish and are submitted before
  # the process exits.
  module CLI
    module_function

    def env(name)
      value = ENV.fetch(name, "").strip
      value.empty? ? nil : value
    end

    def parse(argv)
      concurrency_env = env("TASKER_WORKER_CONCURRENCY")
      options = {
        database_url: env("DATABASE_URL"),
        templates: env("TASKER_TEMPLATE_PATH"),
        handler_path: nil,
        requires: [],
        concurrency: concurrency_env,
        health_bind: env("TASKER_WORKER_BIND"),
        environment: env("TASKER_ENV")
      }
      parser = OptionParser.new do |o|
        o.banner = "Usage: tasker-worker [options]  (Tasker worker running Ruby step handlers)"
        o.on("--database-url URL", "PostgreSQL url (DATABASE_URL); unset: the private dev database") { |v| options[:database_url] = v }
        o.on("--templates DIR", "task templates to register and serve (TASKER_TEMPLATE_PATH)") { |v| options[:templates] = v }
        o.on("--handler-path DIR", "directory put on $LOAD_PATH for handler files; repeatable " \
                                   "(TASKER_HANDLER_PATH, ':'-separated)") { |v| (options[:handler_path] ||= []) << v }
        o.on("--require FEATURE", "file required at start so load errors fail fast; repeatable") { |v| options[:requires] << v }
        o.on("--concurrency N", "handler threads (TASKER_WORKER_CONCURRENCY), default 8") { |v| options[:concurrency] = v }
        o.on("--health-bind ADDR", "address of /health, e.g. 127.0.0.1:8081 (TASKER_WORKER_BIND)") { |v| options[:health_bind] = v }
        o.on("--env NAME", "environment whose template overrides apply (TASKER_ENV)") { |v| options[:environment] = v }
      end
      parser.parse!(argv)
      raise OptionParser::InvalidArgument, "unexpected arguments: #{argv.join(' ')}" unless argv.empty?

      options[:handler_path] ||= (env("TASKER_HANDLER_PATH") || "").split(File::PATH_SEPARATOR).reject(&:empty?)
      raw = options[:concurrency] || "8"
      unless raw.to_s.match?(/\A\d+\z/) && raw.to_i >= 1
        raise OptionParser::InvalidArgument, "--concurrency must be a positive integer, got #{raw.inspect}"
      end

      options[:concurrency] = raw.to_i
      options
    end

    def main(argv = ARGV)
      begin
        options = parse(argv.dup)
      rescue OptionParser::ParseError => e
        warn "tasker-worker: #{e.message}"
        return 2
      end
      Native.init_logging(ENV["TASKER_LOG_FORMAT"] == "json")
      $stdout.sync = true
      logger = Logger.new($stderr, progname: "tasker_core.worker")
      options[:handler_path].reverse_each { |p| $LOAD_PATH.unshift(File.expand_path(p)) }
      begin
        options[:requires].each { |f| require f }
        database_url = options[:database_url] || Native.resolve_database_url
        worker = Worker.new(database_url, template_path: options[:templates], environment: options[:environment],
                                          concurrency: options[:concurrency], health_bind: options[:health_bind])
      rescue Errors::Error, LoadError => e
        warn "tasker-worker: #{e.class.name.split('::').last}: #{e.message}"
        return 2
      end
      runner = WorkerRunner.new(worker, Registry.new, threads: options[:concurrency], logger: logger)
      %w[TERM INT].each do |sig|
        Signal.trap(sig) do
          # Trap context: no logging mutexes here; the runner only flips the runtime's flag.
          runner.stop
        end
      end
      puts "tasker worker health on http://#{worker.health_address}" if worker.health_address
      puts "tasker worker serving #{worker.namespaces.join(', ')}"
      runner.start
      begin
        runner.wait
      rescue Errors::Error => e
        warn "tasker-worker: #{e.class.name.split('::').last}: #{e.message}"
        return 1
      end
      0
    end
  end
end
