# frozen_string_literal: true

require "logger"

module TaskerCore
  # The Ruby worker process (+tasker-worker+). The core runtime (native) claims steps, extends
  # visibility, enforces timeouts and submits results; this only runs handlers on +--concurrency+
  # threads. SIGTERM / SIGINT stop claiming; steps already running finish and are submitted before
  # the process exits.
  module CLI
    module_function

    # The command line over the environment, parsed by the core as for every language:
    # <tt>{ "run" => { "options", "handler_path", "require" } }</tt> or
    # <tt>{ "exit" => { "code", "output" } }</tt>.
    def parse(argv)
      Native.parse_worker_command("Ruby", argv.map(&:to_s))
    end

    # Hands a Logger's records to the core's log (one JSON object per line under
    # +TASKER_LOG_FORMAT=json+); the Logger itself then writes nothing.
    CORE_LOG_FORMATTER = proc do |severity, _time, progname, message|
      text = message.is_a?(Exception) ? "#{message.class}: #{message.message}" : message.to_s
      level = %w[DEBUG INFO WARN ERROR].include?(severity) ? severity.downcase : "error"
      Native._log(level, progname.to_s, text)
      ""
    end

    def main(argv = ARGV)
      parsed = parse(argv)
      if (done = parsed["exit"])
        (done["code"].zero? ? $stdout : $stderr).write(done["output"])
        return done["code"]
      end
      run = parsed["run"]
      options = run["options"].compact.transform_keys(&:to_sym)
      subscribers = options.delete(:subscribers) || []
      json_logs = ENV["TASKER_LOG_FORMAT"].to_s.strip.casecmp?("json")
      Native.init_logging(json_logs)
      $stdout.sync = true
      logger = Logger.new($stderr, progname: "tasker_core.worker")
      # Every line of the process in the core's JSON format, the worker's own included.
      logger.formatter = CORE_LOG_FORMATTER if json_logs
      run["handler_path"].reverse_each { |p| $LOAD_PATH.unshift(File.expand_path(p)) }
      begin
        run["require"].each { |f| require f }
        database_url = options.delete(:database_url).to_s
        database_url = Native.resolve_database_url if database_url.empty?
        # Resolved before the worker starts claiming: a bad name must not leave claimed steps.
        resolved = subscribers.map { |name| [name, Events.resolve_subscriber(name)] }
        worker = Worker.new(database_url, **options)
        resolved.each { |name, subscriber| worker.subscribe(subscriber, name: name, logger: logger) }
      rescue Errors::Error, LoadError => e
        warn "tasker-worker: #{e.class.name.split('::').last}: #{e.message}"
        return 2
      end
      runner = WorkerRunner.new(worker, Registry.new, threads: options.fetch(:concurrency, 8), logger: logger)
      %w[TERM INT].each do |sig|
        Signal.trap(sig) do
          # Trap context: no logging mutexes here; the runner only flips the runtime's flag.
          runner.stop
        end
      end
      # One write per line: core log lines share the file when output is redirected.
      $stdout.write("tasker worker health on http://#{worker.health_address}\n") if worker.health_address
      $stdout.write("tasker worker serving #{worker.namespaces.join(', ')}\n")
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
