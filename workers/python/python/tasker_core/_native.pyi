"""The compiled core (``bindings/python``). Checked against the module by ``mypy.stubtest``."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Union, final

from .log import StepLoggerAdapter

__all__ = [
    "StepContext",
    "StepLogger",
    "Worker",
    "DispatchedStep",
    "Subscription",
    "SnapshotRequest",
    "BusinessMetricsSubscriber",
    "PerformanceMonitoringSubscriber",
    "lifecycle_event",
    "log",
    "error_kinds",
    "raise_native_error",
    "engine_error_codes",
    "resolve_database_url",
    "init_logging",
]

@final
class StepLogger:
    """Logs through the core's tracing; every line carries correlation_id, task_uuid, step_uuid,
    step_name and namespace. ``context.logger`` wraps it in a ``logging.LoggerAdapter``."""

    def log(self, level: str, message: str, fields: Optional[Mapping[str, Any]] = None) -> None: ...
    def debug(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...

@final
class StepContext:
    """What a handler receives (spec §0.5). Input and dependency results are read-only: every
    accessor returns a fresh copy."""

    @staticmethod
    def from_json(
        data: Union[str, Mapping[str, Any]],
        task_creator: Optional[Callable[[Dict[str, Any]], Mapping[str, Any]]] = None,
    ) -> StepContext:
        """Test helper: a context from JSON text or a dict such as ``{"step_name": "validate_cart",
        "input": {...}, "dependency_results": {"a": {...}}, "attempt": 2}``. Every field is optional.
        ``task_creator(request) -> {task_uuid, status, created, ...}`` serves ``create_task`` and may
        raise ``TaskCreationError``. Raises ``InvalidContextError`` for data of the wrong shape."""
        ...
    @property
    def task_uuid(self) -> str: ...
    @property
    def step_uuid(self) -> str: ...
    @property
    def step_name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def workflow_name(self) -> str: ...
    @property
    def workflow_version(self) -> str: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def traceparent(self) -> Optional[str]:
        """The W3C ``traceparent`` continuing this attempt's trace (the attempt's span when the
        worker exports traces, else the task's), or None when the task has no trace."""
        ...
    @property
    def tracestate(self) -> Optional[str]:
        """The W3C ``tracestate`` that goes with ``traceparent``, or None."""
        ...
    @property
    def attempt(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def input(self) -> Dict[str, Any]: ...
    @property
    def dependency_results(self) -> Dict[str, Any]: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def logger(self) -> StepLoggerAdapter: ...
    def get_input(self, key: str) -> Any: ...
    def get_input_or(self, key: str, default: Any) -> Any: ...
    def get_dependency_result(self, step_name: str) -> Any: ...
    def get_dependency_field(self, step_name: str, *path: Union[str, int]) -> Any: ...
    def get_config(self, key: str) -> Any: ...
    def is_retry(self) -> bool: ...
    def is_last_retry(self) -> bool: ...
    def create_task(
        self,
        namespace: str,
        name: str,
        context: Mapping[str, Any],
        *,
        version: Optional[str] = None,
        correlation_id: Optional[str] = None,
        parent_correlation_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        initiator: Optional[str] = None,
        source_system: Optional[str] = None,
        reason: Optional[str] = None,
        tags: Optional[List[str]] = None,
        priority: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Creates a task through the engine (§0.3); returns ``{task_uuid, status, created,
        namespace, name, version, correlation_id}``. Raises ``TaskCreationError``."""
        ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class DispatchedStep:
    """One claimed step handed to this process."""

    @property
    def context(self) -> StepContext: ...
    @property
    def callable(self) -> str: ...
    def complete(self, envelope: Mapping[str, Any]) -> bool:
        """Hands the §0.6 envelope back; False if the runtime no longer waits for it."""
        ...
    def complete_unhandled(self, exception_class: str, message: str) -> bool:
        """Records an ``UNHANDLED_EXCEPTION`` failure ``<exception_class>: <message>``."""
        ...
    def complete_handler_not_found(self) -> bool:
        """Records the permanent ``HANDLER_NOT_FOUND`` failure for this step's callable."""
        ...

@final
class Worker:
    """The core worker runtime, running on its own threads. Boots (migrations, template
    registration) before returning."""

    def __new__(
        cls,
        database_url: str,
        *,
        template_path: Optional[str] = None,
        namespaces: Optional[List[str]] = None,
        environment: Optional[str] = None,
        concurrency: int = 8,
        health_bind: Optional[str] = None,
        visibility_timeout_ms: Optional[int] = None,
        retry_delay_scale: Optional[float] = None,
    ) -> Worker: ...
    @property
    def namespaces(self) -> List[str]: ...
    @property
    def health_address(self) -> Optional[str]: ...
    def next_step(self, timeout_ms: int = 200) -> Optional[DispatchedStep]:
        """Waits (interpreter lock released) up to ``timeout_ms`` for the next claimed step."""
        ...
    def stop(self) -> None:
        """Stops claiming; steps already claimed are still handed out and must be completed."""
        ...
    def is_closed(self) -> bool:
        """True once the runtime has stopped and no step is left to hand out."""
        ...
    def join(self, timeout_ms: Optional[int] = None) -> bool:
        """Waits for the runtime to finish; True when it has. Raises its error if it failed."""
        ...
    def subscribe(self, subscriber: Any, name: Optional[str] = None) -> None:
        """Registers a lifecycle-event subscriber (``event_names`` and ``call(event)``), called on a
        thread of its own; ``name`` lists its ``snapshot()`` under ``/observability/snapshots``."""
        ...
    def unsubscribe(self, subscriber: Any) -> bool:
        """Removes a subscriber; False if it was not registered."""
        ...
    def next_snapshot_request(self, timeout_ms: int = 200) -> Optional[SnapshotRequest]:
        """Waits (interpreter lock released) for a request of a subscriber's snapshot."""
        ...

@final
class Subscription:
    """The events the core queued for one subscriber."""

    @property
    def id(self) -> int: ...
    def next_event(self, timeout_ms: int = 200) -> Optional[Dict[str, Any]]:
        """Waits (interpreter lock released) up to ``timeout_ms`` for the next event."""
        ...
    def is_closed(self) -> bool:
        """True once unsubscribed (or the worker stopped) and every queued event was taken."""
        ...

@final
class SnapshotRequest:
    """A request for one subscriber's snapshot."""

    @property
    def subscriber(self) -> Any: ...
    def answer(self, snapshot: Any) -> None:
        """Answers with a JSON-representable snapshot, or None."""
        ...

@final
class BusinessMetricsSubscriber:
    """Counts orders, revenue and refunds per event namespace (spec §5.3). Thread-safe."""

    def __new__(cls) -> BusinessMetricsSubscriber: ...
    @property
    def event_names(self) -> List[str]: ...
    def call(self, event: Mapping[str, Any]) -> None: ...
    def snapshot(self) -> Dict[str, Any]: ...
    def reset(self) -> None: ...

@final
class PerformanceMonitoringSubscriber:
    """Per-workflow and per-step counts, failures and p50/p95 durations (spec §5.4). Thread-safe."""

    def __new__(cls, slow_threshold_ms: int = 1000) -> PerformanceMonitoringSubscriber: ...
    @property
    def slow_threshold_ms(self) -> int: ...
    @property
    def event_names(self) -> List[str]: ...
    def call(self, event: Mapping[str, Any]) -> None: ...
    def snapshot(self) -> Dict[str, Any]: ...
    def reset(self) -> None: ...

def error_kinds() -> List[str]:
    """Every error kind the native module raises; each maps to a class in ``tasker_core.errors``."""
    ...

def raise_native_error(kind: str, message: str) -> None:
    """Raises the exception mapped to ``kind`` exactly as the runtime does (for tests)."""
    ...

def engine_error_codes() -> Dict[str, str]:
    """The engine-generated step error codes (§0.6)."""
    ...

def resolve_database_url() -> str:
    """``DATABASE_URL``, else the private dev database (started when needed)."""
    ...

def init_logging(json: bool = False) -> None:
    """Routes core logs (``RUST_LOG`` filter, default info) to stderr; once per process."""
    ...

def parse_worker_command(language: str, args: List[str]) -> Dict[str, Any]:
    """The ``tasker-worker`` command line over the environment, parsed by the core:
    ``{"run": {"options", "handler_path", "require"}}`` or ``{"exit": {"code", "output"}}``."""
    ...

__version__: str

def lifecycle_event(event_name: str, fields: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """A §5.1 event with every key: ``fields`` over defaults. ``ValueError`` for an unknown name or key."""
    ...

def log(level: str, target: str, message: str) -> None:
    """One line of the process's own log (not a step's) in the worker's log."""
    ...
