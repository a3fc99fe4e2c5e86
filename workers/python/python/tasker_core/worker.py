"""The Python worker process: ``tasker-worker`` or ``python -m tasker_core.worker``.

The core runtime (native) claims steps, extends visibility, enforces timeouts and submits results;
this module only runs handlers on ``--concurrency`` threads, each waiting for its next step inside
the runtime with the GIL released. SIGTERM / SIGINT stop claiming; steps already running finish
and are submitted before the process exits.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from typing import Any, Optional, Sequence

from . import _native
from .errors import HandlerNotFoundError, TaskerError
from .execution import execute
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


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name, "").strip()
    return value or None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tasker-worker", description="Tasker worker running Python step handlers")
    p.add_argument("--database-url", default=_env("DATABASE_URL"),
                   help="PostgreSQL url (DATABASE_URL); unset: the private dev database")
    p.add_argument("--templates", default=_env("TASKER_TEMPLATE_PATH"),
                   help="directory of task templates to register and serve (TASKER_TEMPLATE_PATH)")
    p.add_argument("--handler-path", action="append", default=None,
                   help="directory put on sys.path for handler modules; repeatable (TASKER_HANDLER_PATH, "
                        "os.pathsep-separated)")
    p.add_argument("--handler-module", action="append", default=[],
                   help="module imported at start so import errors fail fast; repeatable")
    p.add_argument("--concurrency", type=int, default=int(_env("TASKER_WORKER_CONCURRENCY") or 8),
                   help="handler threads (TASKER_WORKER_CONCURRENCY), default 8")
    p.add_argument("--health-bind", default=_env("TASKER_WORKER_BIND"),
                   help="address of /health, e.g. 127.0.0.1:8081 (TASKER_WORKER_BIND)")
    p.add_argument("--env", dest="environment", default=_env("TASKER_ENV"),
                   help="environment whose template overrides apply (TASKER_ENV)")
    args = p.parse_args(argv)
    if args.handler_path is None:
        env_paths = _env("TASKER_HANDLER_PATH")
        args.handler_path = env_paths.split(os.pathsep) if env_paths else []
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    _native.init_logging(json=os.environ.get("TASKER_LOG_FORMAT") == "json")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for path in reversed(args.handler_path):
        sys.path.insert(0, os.path.abspath(path))
    try:
        for module in args.handler_module:
            importlib.import_module(module)
        database_url = args.database_url or _native.resolve_database_url()
        worker = _native.Worker(
            database_url,
            template_path=args.templates,
            environment=args.environment,
            concurrency=args.concurrency,
            health_bind=args.health_bind,
        )
    except (TaskerError, ImportError) as e:
        print(f"tasker-worker: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    runner = WorkerRunner(worker, HandlerRegistry(), threads=args.concurrency)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s received: finishing in-flight steps", signal.Signals(signum).name)
        runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if worker.health_address:
        print(f"tasker worker health on http://{worker.health_address}", flush=True)
    print(f"tasker worker serving {', '.join(worker.namespaces)}", flush=True)
    runner.start()
    try:
        runner.wait()
    except TaskerError as e:
        print(f"tasker-worker: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
