# frozen_string_literal: true

module TaskerCore
  # The two subscribers of spec §5.3 and §5.4, shared with every language through the core.
  # Both are thread-safe and offer +snapshot+ and +reset+.
  #
  #   metrics = TaskerCore::Observability::BusinessMetricsSubscriber.new
  #   worker.subscribe(metrics)
  #   metrics.snapshot # => {"namespaces" => {"ecommerce_rb" => {"orders_completed" => 1, ...}}}
  #
  # +tasker-worker --subscribe Observability::BusinessMetricsSubscriber+ registers one by name.
  module Observability
    # Counts orders, revenue and refunds per event namespace (spec §5.3).
    class BusinessMetricsSubscriber
      # @return [TaskerCore::Native::BusinessMetricsSubscriber] the core's subscriber
      attr_reader :native

      def initialize
        @native = Native::BusinessMetricsSubscriber._new
      end

      # @return [Array<String>] +step.completed+ and +task.completed+
      def event_names = @native._event_names

      # @param event [Hash] a §5.1 event with String keys
      def call(event) = @native._call(event)

      # @return [Hash] +{"namespaces" => {ns => {"orders_completed", "revenue", "refunds_processed", "refunded_cents"}}}+
      def snapshot = @native._snapshot

      def reset = @native._reset
    end

    # Per-workflow and per-step counts, failures and nearest-rank p50/p95 durations; attempts
    # slower than +slow_threshold_ms+ are counted and logged as +slow step+ (spec §5.4).
    class PerformanceMonitoringSubscriber
      # @return [TaskerCore::Native::PerformanceMonitoringSubscriber] the core's subscriber
      attr_reader :native

      def initialize(slow_threshold_ms: 1000)
        raise ArgumentError, "slow_threshold_ms must be an Integer" unless slow_threshold_ms.is_a?(Integer)

        @native = Native::PerformanceMonitoringSubscriber._new(slow_threshold_ms)
      end

      def slow_threshold_ms = @native._slow_threshold_ms

      # @return [Array<String>] the task and attempt-ending events
      def event_names = @native._event_names

      # @param event [Hash] a §5.1 event with String keys
      def call(event) = @native._call(event)

      # @return [Hash] the §5.4 snapshot
      def snapshot = @native._snapshot

      def reset = @native._reset
    end

    # The built-in subscribers by their spec names (§0.2, module +Observability+).
    BUILTIN = {
      "Observability::BusinessMetricsSubscriber" => BusinessMetricsSubscriber,
      "Observability::PerformanceMonitoringSubscriber" => PerformanceMonitoringSubscriber
    }.freeze
  end
end
