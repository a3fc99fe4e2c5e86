# frozen_string_literal: true

module TaskerCore
  # Delivering lifecycle events (spec §5.1) to Ruby subscribers. {Worker#subscribe} has the core
  # queue every event of the worker's namespaces that a subscriber wants; a Ruby thread per
  # subscriber takes them one at a time and calls +subscriber.call(event)+. An exception is logged
  # and swallowed: it never affects a step or a task. A slow subscriber only lags. One more thread
  # answers +GET /observability/snapshots+ with the named subscribers' +snapshot+.
  module Events
    module_function

    # @return [Thread] the thread delivering +subscription+'s events to +subscriber+
    def start_delivery(subscription, subscriber, label, logger)
      Thread.new do
        Thread.current.name = "tasker-events-#{label}"
        loop do
          event = subscription._next_event(200)
          if event.nil?
            break if subscription._closed?

            next
          end
          begin
            subscriber.call(event)
          rescue StandardError => e
            logger&.error("subscriber #{label} failed on #{event['event_name']} of task #{event['task_uuid']}; " \
                          "skipped: #{e.class}: #{e.message}")
          end
        end
      end
    end

    # @return [Thread] the thread answering snapshot requests of +worker+'s subscribers
    def start_snapshots(worker, logger)
      Thread.new do
        Thread.current.name = "tasker-snapshots"
        loop do
          request = worker.native._next_snapshot_request(200)
          if request.nil?
            break if worker.closed?

            next
          end
          subscriber = worker.subscriber_by_id(request._subscriber_id)
          begin
            request._answer(subscriber&.snapshot)
          rescue StandardError => e
            logger&.error("snapshot of #{subscriber.class} failed: #{e.class}: #{e.message}")
            request._answer(nil)
          end
        end
      end
    end

    # The subscriber +--subscribe CALLABLE+ names: a built-in by its spec name, else a constant
    # (required as a handler's namespace is, see {Registry}); a class is created with no arguments.
    # @raise [Errors::ConfigurationError] naming what is wrong
    def resolve_subscriber(callable_name)
      builtin = Observability::BUILTIN[callable_name]
      return builtin.new if builtin

      segments = callable_name.split("::")
      unless segments.size >= 2 && segments.all? { |s| s.match?(/\A[A-Z][A-Za-z0-9_]*\z/) }
        raise Errors::ConfigurationError, "--subscribe #{callable_name.inspect}: expected Module::Subscriber"
      end

      found = constant(callable_name)
      if found.nil?
        feature = Registry.feature_for(segments[0..-2].join("::"))
        begin
          require feature
        rescue LoadError => e
          raise Errors::ConfigurationError, "--subscribe #{callable_name.inspect}: cannot require #{feature}: #{e.message}"
        end
        found = constant(callable_name)
      end
      raise Errors::ConfigurationError, "--subscribe #{callable_name.inspect}: not defined" if found.nil?

      subscriber = found.is_a?(Class) ? found.new : found
      unless subscriber.respond_to?(:event_names) && subscriber.respond_to?(:call)
        raise Errors::ConfigurationError, "--subscribe #{callable_name.inspect}: a subscriber needs event_names and call(event)"
      end

      subscriber
    end

    def constant(name)
      Object.const_get(name)
    rescue NameError
      nil
    end
  end
end
