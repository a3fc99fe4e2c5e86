"""The two subscribers of spec §5.3 and §5.4, shared with every language through the core.

    from tasker_core.observability import BusinessMetricsSubscriber, PerformanceMonitoringSubscriber

    metrics = BusinessMetricsSubscriber()
    worker.subscribe(metrics)
    ...
    metrics.snapshot()  # {"namespaces": {"ecommerce_py": {"orders_completed": 1, ...}}}

Both are thread-safe and offer ``snapshot()`` and ``reset()``;
``PerformanceMonitoringSubscriber(slow_threshold_ms=1000)`` logs a ``slow step`` warning for each
attempt slower than the threshold. ``tasker-worker --subscribe observability.BusinessMetricsSubscriber``
registers one by name.
"""

from ._native import BusinessMetricsSubscriber, PerformanceMonitoringSubscriber

__all__ = ["BusinessMetricsSubscriber", "PerformanceMonitoringSubscriber"]
