"""The Python worker process: ``tasker-worker`` or ``python -m tasker_core.worker``.

The core runtime (native) claims steps, extends visibility, enforces timeouts and submits results;
this module only runs handlers on ``--concurrency`` threads, each waiting for its next step inside
the runtime with the GIL released. SIGTERM / SIGINT stop claiming; steps already running finish
and are submitted before the process exits.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from typing import Any, Optional, Sequence

from . import _native
from .errors import HandlerNotFoundError, TaskerError
from .events import resolve_subscriber
from .execution import execute
from .log import ProcessLogHandler, route_to_worker_log
from .registry import HandlerRegistry

log = logging.getLogger("tasker_core.worker")


class WorkerRunner:
    """Runs the handlers of ``registry`` for ``worker`` on ``threads`` threads."""

    def __init__(self, worker: Any, registry: HandlerRegistry, threads: int) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.worker = worker
        self.registry = registry
        self._threads = [
            threading.Thread(target=self._serve, name=f"tasker-handler-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """No new claims; in-flight steps finish."""
        self.worker.stop()

    def wait(self) -> None:
        """Returns once the runtime has stopped and every handler thread has drained."""
        # Short waits so the main thread can run signal handlers in between.
        while not self.worker.join(timeout_ms=200):
            pass
        for t in self._threads:
            t.join()

    def _serve(self) -> None:
        while True:
            step = self.worker.next_step(timeout_ms=200)
            if step is None:
                if self.worker.is_closed():
                    return
                continue
            self.run_step(step)

    def run_step(self, step: Any) -> None:
        try:
            try:
                handler = self.registry.resolve(step.callable)
            except HandlerNotFoundError as e:
                log.error("%s", e)
                step.complete_handler_not_found()
                return
            step.complete(execute(handler, step.context).to_envelope())
        except BaseException as e:  # noqa: BLE001 - the step must be answered whatever happens
            step.complete_unhandled(type(e).__name__, str(e))
            if not isinstance(e, Exception):
                raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: flags over the environment, parsed by the core as for every language."""
    parsed = _native.parse_worker_command("Python", list(sys.argv[1:] if argv is None else argv))
    if "exit" in parsed:
        code = int(parsed["exit"]["code"])
        (sys.stdout if code == 0 else sys.stderr).write(parsed["exit"]["output"])
        return code
    run = parsed["run"]
    options = {k: v for k, v in run["options"].items() if v is not None}
    subscribers = options.pop("subscribers", None) or []
    json_logs = os.environ.get("TASKER_LOG_FORMAT", "").strip().lower() == "json"
    _native.init_logging(json=json_logs)
    if json_logs:
        # Every line of the process in the core's JSON format, Python's own records included.
        logging.basicConfig(level=logging.INFO, handlers=[ProcessLogHandler()])
    else:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    route_to_worker_log()
    for path in reversed(run["handler_path"]):
        sys.path.insert(0, os.path.abspath(path))
    try:
        for module in run["require"]:
            importlib.import_module(module)
        database_url = options.pop("database_url", "") or _native.resolve_database_url()
        # Resolved before the worker starts claiming: a bad name must not leave claimed steps.
        resolved = [(name, resolve_subscriber(name)) for name in subscribers]
        worker = _native.Worker(database_url, **options)
        for name, subscriber in resolved:
            worker.subscribe(subscriber, name=name)
    except (TaskerError, ImportError) as e:
        print(f"tasker-worker: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    runner = WorkerRunner(worker, HandlerRegistry(), threads=int(options.get("concurrency", 8)))

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s received: finishing in-flight steps", signal.Signals(signum).name)
        runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if worker.health_address:
        _announce(f"tasker worker health on http://{worker.health_address}")
    _announce(f"tasker worker serving {', '.join(worker.namespaces)}")
    runner.start()
    try:
        runner.wait()
    except TaskerError as e:
        print(f"tasker-worker: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def _announce(line: str) -> None:
    """One write per line: the core's log lines share the file when output is redirected, and
    ``print`` writes the newline separately when Python runs unbuffered."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
