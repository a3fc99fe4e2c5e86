# frozen_string_literal: true

require "logger"

module TaskerCore
  # The core worker runtime, running on its own native threads. Boots (migrations, template
  # registration, +/health+) before +new+ returns.
  class Worker
    attr_reader :native

    def initialize(database_url, template_path: nil, namespaces: nil, environment: nil, concurrency: nil,
                   health_bind: nil, visibility_timeout_ms: nil, retry_delay_scale: nil)
      options = {
        "database_url" => database_url, "template_path" => template_path, "namespaces" => namespaces,
        "environment" => environment, "concurrency" => concurrency, "health_bind" => health_bind,
        "visibility_timeout_ms" => visibility_timeout_ms, "retry_delay_scale" => retry_delay_scale
      }.compact
      @native = Native::Worker._new(options)
      @subscribers = {}
      @subscribers_lock = Mutex.new
      @snapshots = nil
    end

    def namespaces = @native.namespaces
    def health_address = @native.health_address

    # Waits (GVL released) up to +timeout_ms+ for the next claimed step; nil when none came.
    def next_step(timeout_ms: 200) = @native._next_step(timeout_ms)

    # Stops claiming; steps already claimed are still handed out and must be completed.
    def stop = @native.stop

    # True once the runtime has stopped and no step is left to hand out.
    def closed? = @native.closed?

    # Waits for the runtime to finish; true when it has. Raises its error if it failed.
    def join(timeout_ms: nil) = @native._join(timeout_ms)

    # Registers a lifecycle-event subscriber (spec §5.2): anything that responds to +event_names+
    # and +call(event)+. It is called on a thread of its own, one event (a Hash with String keys)
    # at a time; an exception is logged and swallowed. +name+ (the callable an operator gave)
    # lists its +snapshot+ under +GET /observability/snapshots+.
    # @raise [TypeError] when +subscriber+ lacks +event_names+ or +call+
    def subscribe(subscriber, name: nil, logger: Logger.new($stderr, progname: "tasker_core.events"))
      unless subscriber.respond_to?(:event_names) && subscriber.respond_to?(:call)
        raise TypeError, "a subscriber needs event_names and call(event); #{subscriber.class} has not"
      end

      id = if subscriber.respond_to?(:native) && native_observability?(subscriber.native)
             @native._subscribe_native(name, subscriber.native)
           else
             names = Array(subscriber.event_names).map(&:to_s)
             snapshot = subscriber.respond_to?(:snapshot)
             subscription = @native._subscribe(name, names, snapshot)
             Events.start_delivery(subscription, subscriber, name || subscriber.class.name, logger)
             @subscribers_lock.synchronize { @snapshots ||= Events.start_snapshots(self, logger) } if snapshot
             subscription._id
           end
      @subscribers_lock.synchronize { @subscribers[id] = subscriber }
      nil
    end

    # Removes a subscriber (the same object); it gets the events already queued for it and no more.
    # @return [Boolean] false when it was not registered
    def unsubscribe(subscriber)
      id = @subscribers_lock.synchronize do
        found = @subscribers.find { |_, s| s.equal?(subscriber) }&.first
        @subscribers.delete(found) if found
        found
      end
      id ? @native._unsubscribe(id) : false
    end

    # @api private
    def subscriber_by_id(id) = @subscribers_lock.synchronize { @subscribers[id] }

    private

    def native_observability?(object)
      object.is_a?(Native::BusinessMetricsSubscriber) || object.is_a?(Native::PerformanceMonitoringSubscriber)
    end
  end

  module Native
    # One claimed step, handed out by {Worker#next_step}: complete it exactly once. Defined by the
    # native extension; a spec checks these tags against the loaded class.
    #
    # @!method context
    #   @return [TaskerCore::StepContext] the step's context
    # @!method callable
    #   @return [String] the template's handler callable
    # @!method complete(envelope)
    #   Hands back the §0.6 envelope (+Result#to_envelope+).
    #   @param envelope [Hash]
    #   @return [Boolean] false when the step was already completed or is no longer awaited
    # @!method complete_unhandled(exception_class, message)
    #   Records "<exception_class>: <message>" as a retryable +UNHANDLED_EXCEPTION+ failure.
    #   @return [Boolean]
    # @!method complete_handler_not_found
    #   Records the permanent +HANDLER_NOT_FOUND+ failure for the step's callable.
    #   @return [Boolean]
    # @!method inspect
    #   @return [String]
    class DispatchedStep; end
  end

  # Runs the handlers of +registry+ for +worker+ on +threads+ Ruby threads, each waiting for its
  # next step inside the runtime with the GVL released.
  class WorkerRunner
    attr_reader :worker, :registry

    def initialize(worker, registry, threads:, logger: nil)
      raise ArgumentError, "threads must be at least 1" if threads < 1

      @worker = worker
      @registry = registry
      @count = threads
      @threads = []
      @logger = logger
    end

    def start
      @threads = Array.new(@count) { |i| Thread.new { Thread.current.name = "tasker-handler-#{i}"; serve } }
    end

    # No new claims; in-flight steps finish.
    def stop = @worker.stop

    # Returns once the runtime has stopped and every handler thread has drained.
    def wait
      # Short waits so the main thread runs trap handlers in between.
      nil until @worker.join(timeout_ms: 200)
      @threads.each(&:join)
    end

    def run_step(step)
      begin
        handler = @registry.resolve(step.callable)
      rescue Errors::HandlerNotFoundError => e
        @logger&.error(e.message)
        step.complete_handler_not_found
        return
      end
      step.complete(Execution.execute(handler, step.context).to_envelope)
    rescue Exception => e # rubocop:disable Lint/RescueException -- the step must be answered whatever happens
      step.complete_unhandled(e.class.name || e.class.inspect, e.message)
      raise unless e.is_a?(StandardError) || e.is_a?(ScriptError)
    end

    private

    def serve
      loop do
        step = @worker.next_step(timeout_ms: 200)
        if step.nil?
          return if @worker.closed?

          next
        end
        run_step(step)
      end
    end
  end
end
