"""The worker runtime hosted in this Python process and the REST client, against a real
PostgreSQL (the dev database, or DATABASE_URL) and the real `tasker server` binary.

Needs the binaries built (`cargo make test` builds them first); a missing binary fails the test."""

import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tasker_core import Client, StepHandler, _native
from tasker_core.errors import (
    ApiError,
    AuthenticationError,
    PermissionDeniedError,
    TaskCreationError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from tasker_core.registry import HandlerRegistry
from tasker_core.worker import WorkerRunner

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "fixtures/task_templates/python/tests"


def bin_dir() -> Path:
    if os.environ.get("TASKER_BIN_DIR"):
        return Path(os.environ["TASKER_BIN_DIR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database() -> str:
    base = _native.resolve_database_url()
    name = f"pytest_{uuid.uuid4().hex[:12]}"
    psql = shutil.which("psql")
    assert psql, "psql is required (tools/setup.sh installs postgresql-client)"
    subprocess.run([psql, base, "-qc", f"CREATE DATABASE {name}"], check=True)
    return base.rsplit("/", 1)[0] + "/" + name


class CreatesTask(StepHandler):
    """Step `a` of the linear workflow, replaced: creates a diamond task through the engine."""

    def call(self, context):
        created = context.create_task(
            context.namespace, "diamond_workflow", {"n": 2}, idempotency_key=f"child:{context.step_uuid}"
        )
        return self.success({"value": 1, "attempt": context.attempt, "child": created})


@pytest.fixture(scope="module")
def stack():
    server_bin = bin_dir() / "tasker"
    assert server_bin.exists(), f"{server_bin} is missing: build the binaries first (cargo make build-bins)"
    url = fresh_database()
    env = dict(os.environ, DATABASE_URL=url, TASKER_ENV="test", RUST_LOG="warn")
    worker = _native.Worker(
        url, template_path=str(TEMPLATES), environment="test", concurrency=4, health_bind="127.0.0.1:0"
    )
    registry = HandlerRegistry()
    runner = WorkerRunner(worker, registry, threads=4)
    runner.start()
    server, base = start_server(env)
    yield {"client": Client(base), "worker": worker, "runner": runner, "registry": registry, "env": env}
    runner.stop()
    runner.wait()
    server.terminate()
    server.wait(timeout=10)


def start_server(env):
    """A `tasker server` with this environment on a free port, once ready: (process, base url)."""
    port = free_port()
    env = dict(env, TASKER_BIND=f"127.0.0.1:{port}")
    server = subprocess.Popen([str(bin_dir() / "tasker"), "server"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/ready", timeout=1) as r:
                if r.status == 200:
                    return server, base
        except OSError:
            pass
        assert server.poll() is None, f"server exited: {server.stderr.read().decode() if server.stderr else ''}"
        assert time.monotonic() < deadline, "server not ready after 30 s"
        time.sleep(0.05)


def test_worker_boots_and_reports_namespaces_and_health(stack):
    worker = stack["worker"]
    assert worker.namespaces == ["tasker_tests_py"]
    with urllib.request.urlopen(f"http://{worker.health_address}/health", timeout=5) as r:
        assert r.status == 200


def test_linear_workflow_runs_on_python_threads(stack):
    c = stack["client"]
    t = c.create_task("tasker_tests_py", "linear_workflow", {"n": 4}, version="1.0.0")
    assert t["created"] is True and t["status"] == "pending"
    done = c.wait_for_task(t["task_uuid"], timeout=30)
    assert done["status"] == "complete"
    values = {s["name"]: s["result"]["value"] for s in done["steps"]}
    assert values == {"a": 5, "b": 10, "c": 7, "d": 49}


def test_handler_exception_fails_the_step_and_the_worker_keeps_serving(stack):
    c = stack["client"]
    t = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 1, "behaviors": {"left": {"mode": "panic"}}})
    done = c.wait_for_task(t["task_uuid"], timeout=30)
    left = {s["name"]: s for s in done["steps"]}["left"]
    assert done["status"] == "error"
    assert left["attempts"] == 3
    assert left["error"]["error_code"] == "UNHANDLED_EXCEPTION"
    assert left["error"]["message"] == "RuntimeError: step left was told to panic"
    again = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 1})
    assert c.wait_for_task(again["task_uuid"], timeout=30)["status"] == "complete"


def test_handler_creates_a_task_through_the_engine(stack):
    stack["registry"].register("tasker_tests.step_handlers.LinearAHandler", CreatesTask)
    try:
        c = stack["client"]
        t = c.create_task("tasker_tests_py", "linear_workflow", {"n": 1}, version="1.0.0")
        done = c.wait_for_task(t["task_uuid"], timeout=30)
    finally:
        stack["registry"].register("tasker_tests.step_handlers.LinearAHandler", _linear_a())
    assert done["status"] == "complete"
    child = {s["name"]: s for s in done["steps"]}["a"]["result"]["child"]
    assert child["created"] is True and child["name"] == "diamond_workflow"
    finished = c.wait_for_task(child["task_uuid"], timeout=30)
    assert finished["status"] == "complete"
    assert {s["name"]: s["result"]["value"] for s in finished["steps"]}["end"] == 16


def _linear_a():
    from tasker_tests.step_handlers import LinearAHandler

    return LinearAHandler


def test_client_maps_creation_errors_to_task_creation_error(stack):
    c = stack["client"]
    with pytest.raises(TaskCreationError) as e:
        c.create_task("tasker_tests_py", "linear_workflow", {"n": "four"})
    assert (e.value.code, e.value.field, e.value.transient) == ("INVALID_TASK_INPUT", "/context/n", False)
    assert e.value.details[0]["keyword"] == "type"
    with pytest.raises(TaskCreationError) as e:
        c.create_task("tasker_tests_py", "no_such_workflow", {})
    assert (e.value.code, e.value.field) == ("TEMPLATE_NOT_FOUND", "/name")
    key = f"k-{uuid.uuid4()}"
    first = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 3}, idempotency_key=key)
    replay = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 3}, idempotency_key=key)
    assert replay["task_uuid"] == first["task_uuid"] and replay["created"] is False
    with pytest.raises(TaskCreationError) as e:
        c.create_task("tasker_tests_py", "diamond_workflow", {"n": 4}, idempotency_key=key)
    assert e.value.code == "IDEMPOTENCY_CONFLICT"


def test_client_reads_tasks_and_reports_unknown_ones(stack):
    c = stack["client"]
    with pytest.raises(TaskNotFoundError) as e:
        c.get_task(str(uuid.uuid4()))
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        c.get_task("not-a-uuid")
    assert e.value.status == 400
    listed = c.list_tasks(namespace="tasker_tests_py", limit=2)
    assert len(listed["tasks"]) <= 2


def test_client_reads_a_tasks_lifecycle_events(stack):
    c = stack["client"]
    t = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 3})
    done = c.wait_for_task(t["task_uuid"], timeout=30)
    events = c.get_task_events(t["task_uuid"])
    names = [e["event_name"] for e in events]
    assert names[0] == "task.created" and names[-1] == "task.completed"
    assert names.count("step.started") == names.count("step.completed") == 4
    assert all(e["correlation_id"] == done["correlation_id"] for e in events)
    with pytest.raises(TaskNotFoundError):
        c.get_task_events(str(uuid.uuid4()))


def test_wait_for_task_times_out_with_the_last_status(stack):
    c = stack["client"]
    t = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 1500}}})
    with pytest.raises(WaitTimeoutError) as e:
        c.wait_for_task(t["task_uuid"], timeout=0.2)
    assert e.value.last_status in ("pending", "in_progress")
    assert c.wait_for_task(t["task_uuid"], timeout=30)["status"] == "complete"


def test_unreachable_server_is_a_transient_creation_error():
    c = Client(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(TaskCreationError) as e:
        c.create_task("x", "y", {})
    assert e.value.code == "ENGINE_UNAVAILABLE" and e.value.transient is True
    with pytest.raises(ValueError):
        Client("localhost:8080")


def test_client_covers_every_task_template_and_worker_operation_of_the_openapi_document():
    import json

    from tasker_core.client import OPERATIONS

    doc = json.loads((REPO / "docs/openapi.json").read_text())
    operations = {
        op["operationId"]
        for item in doc["paths"].values()
        for op in item.values()
        if set(op.get("tags", [])) & {"tasks", "templates", "workers"}
    }
    assert set(OPERATIONS) == operations
    for method in OPERATIONS.values():
        assert callable(getattr(Client, method)), method


def test_client_lists_with_every_filter_and_pages_with_the_cursor(stack):
    c = stack["client"]
    made = [c.create_task("tasker_tests_py", "diamond_workflow", {"n": n})["task_uuid"] for n in range(3)]
    for uuid_ in made:
        assert c.wait_for_task(uuid_, timeout=30)["terminal"] is True
    page = c.list_tasks(namespace="tasker_tests_py", name="diamond_workflow", status="complete", limit=2)
    assert [t["task_uuid"] for t in page["tasks"]][:2] == [made[2], made[1]]
    assert all(t["status"] == "complete" and t["terminal"] for t in page["tasks"])
    rest = c.list_tasks(namespace="tasker_tests_py", name="diamond_workflow", status="complete", limit=2, cursor=page["next_cursor"])
    assert made[0] in [t["task_uuid"] for t in rest["tasks"]]
    with pytest.raises(ApiError) as e:
        c.list_tasks(status="done")
    assert (e.value.status, e.value.field) == (400, "/status")


def test_client_cancels_a_task_and_retries_a_failed_step(stack):
    c = stack["client"]
    slow = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 1, "behaviors": {"start": {"mode": "sleep", "ms": 800}}})
    cancelled = c.cancel_task(slow["task_uuid"])
    assert (cancelled["status"], cancelled["terminal"]) == ("cancelled", True)
    with pytest.raises(ApiError) as e:
        c.cancel_task(slow["task_uuid"])
    assert (e.value.status, e.value.code) == (409, "CONFLICT")

    failing = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 1, "behaviors": {"left": {"mode": "permanent"}}})
    ended = c.wait_for_task(failing["task_uuid"], timeout=30)
    first_run = {s["name"]: s for s in ended["steps"]}["left"]
    assert (ended["status"], first_run["status"]) == ("error", "error")
    retried = c.retry_step(failing["task_uuid"], "left")
    assert retried["task_uuid"] == failing["task_uuid"]
    # The worker may already have claimed the step again by the time the answer is read.
    assert {s["name"]: s for s in retried["steps"]}["left"]["status"] != "error" or retried["status"] == "error"
    again = c.wait_for_task(failing["task_uuid"], timeout=30)
    second_run = {s["name"]: s for s in again["steps"]}["left"]
    assert second_run["status"] == "error" and second_run["started_at"] > first_run["started_at"]
    with pytest.raises(ApiError) as e:
        c.retry_step(failing["task_uuid"], "no_such_step")
    assert (e.value.status, e.value.code, e.value.field) == (404, "STEP_NOT_FOUND", "/step_name")


def test_client_lists_this_worker_in_the_registry(stack):
    import os

    workers = stack["client"].list_workers(namespace="tasker_tests_py")["workers"]
    mine = [w for w in workers if w["pid"] == os.getpid() and w["alive"]]
    assert len(mine) == 1, workers
    assert mine[0]["language"] == "python" and "tasker_tests_py" in mine[0]["namespaces"]
    assert stack["client"].list_workers(namespace="nobody_serves_this")["workers"] == []


def test_client_lists_the_registered_templates(stack):
    templates = stack["client"].list_templates()["templates"]
    names = {(t["namespace"], t["name"]) for t in templates}
    assert ("tasker_tests_py", "diamond_workflow") in names


class Recorder:
    """Keeps every event; offers a snapshot (its count)."""

    event_names = ["*"]

    def __init__(self):
        self.events = []

    def call(self, event):
        self.events.append(event)

    def snapshot(self):
        return {"events": len(self.events)}


class Broken:
    event_names = ["*"]

    def __init__(self):
        self.calls = 0

    def call(self, event):
        self.calls += 1
        raise RuntimeError("a subscriber that always fails")


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_subscribers_get_every_event_of_a_run_in_order_and_a_failing_one_changes_nothing(stack):
    from tasker_core.observability import PerformanceMonitoringSubscriber

    worker, c = stack["worker"], stack["client"]
    recorder, broken, perf = Recorder(), Broken(), PerformanceMonitoringSubscriber()
    for s in (recorder, broken, perf):
        worker.subscribe(s)
    try:
        t = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 3})
        done = c.wait_for_task(t["task_uuid"], timeout=30)
        assert done["status"] == "complete"
        stored = c.get_task_events(t["task_uuid"])
        mine = lambda: [e for e in recorder.events if e["task_uuid"] == t["task_uuid"]]  # noqa: E731
        wait_until(lambda: len(mine()) == len(stored))
        assert [e["event_id"] for e in mine()] == [e["event_id"] for e in stored]
        assert mine()[-1]["event_name"] == "task.completed"
        # Each subscriber has its own thread: the failing one may still be catching up.
        wait_until(lambda: broken.calls >= len(stored))
        key = f"tasker_tests_py/diamond_workflow@{done['version']}"
        # Other tests' tasks of the same workflow may end meanwhile: at least this one counts.
        wait_until(lambda: perf.snapshot()["workflows"].get(key, {}).get("count", 0) >= 1)
        assert set(perf.snapshot()["workflows"][key]["steps"]) == {"start", "left", "right", "end"}
    finally:
        for s in (recorder, broken, perf):
            assert worker.unsubscribe(s)
    assert not worker.unsubscribe(recorder), "already removed"
    before = len(recorder.events)
    t = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 4})
    c.wait_for_task(t["task_uuid"], timeout=30)
    time.sleep(0.5)
    assert len(recorder.events) == before, "no event after unsubscribe"


def test_named_subscribers_serve_their_snapshots(stack):
    import json

    from tasker_core.observability import BusinessMetricsSubscriber

    worker, c = stack["worker"], stack["client"]
    recorder, metrics = Recorder(), BusinessMetricsSubscriber()
    worker.subscribe(recorder, name="tests.Recorder")
    worker.subscribe(metrics, name="observability.BusinessMetricsSubscriber")
    try:
        t = c.create_task("tasker_tests_py", "diamond_workflow", {"n": 5})
        c.wait_for_task(t["task_uuid"], timeout=30)
        wait_until(lambda: any(e["task_uuid"] == t["task_uuid"] and e["event_name"] == "task.completed"
                               for e in recorder.events))
        with urllib.request.urlopen(f"http://{worker.health_address}/observability/snapshots", timeout=5) as r:
            snapshots = json.loads(r.read())
        assert set(snapshots) == {"tests.Recorder", "observability.BusinessMetricsSubscriber"}
        assert snapshots["tests.Recorder"]["events"] >= 10
        assert snapshots["observability.BusinessMetricsSubscriber"] == {"namespaces": {}}
    finally:
        worker.unsubscribe(recorder)
        worker.unsubscribe(metrics)


def test_a_subscriber_without_call_is_refused(stack):
    class NoCall:
        event_names = ["*"]

    with pytest.raises(TypeError, match="call"):
        stack["worker"].subscribe(NoCall())
    with pytest.raises(TypeError, match="event_names"):
        stack["worker"].subscribe(object())


def test_client_sends_its_token_and_raises_typed_errors_for_401_and_403(stack, monkeypatch):
    env = stack["env"]

    def token(*args):
        out = subprocess.run([str(bin_dir() / "tasker"), "token", *args], env=env, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    suffix = uuid.uuid4().hex[:8]
    reader = token("create", "--name", f"py-reader-{suffix}", "--scope", "tasker_tests_py:read")
    writer = token("create", "--name", f"py-writer-{suffix}", "--scope", "tasker_tests_py:write")
    server, base = start_server(dict(env, TASKER_AUTH="tokens"))
    try:
        monkeypatch.delenv("TASKER_TOKEN", raising=False)
        with pytest.raises(AuthenticationError) as e:
            Client(base).list_tasks()
        assert (e.value.status, e.value.code, e.value.field) == (401, "UNAUTHENTICATED", "/headers/authorization")
        with pytest.raises(AuthenticationError):
            Client(base).create_task("tasker_tests_py", "diamond_workflow", {"n": 1})

        created = Client(base, token=writer).create_task("tasker_tests_py", "diamond_workflow", {"n": 1})
        with pytest.raises(PermissionDeniedError) as e:
            Client(base, token=reader).create_task("tasker_tests_py", "diamond_workflow", {"n": 1})
        assert (e.value.status, e.value.code, e.value.scope) == (403, "FORBIDDEN", "tasker_tests_py:write")
        with pytest.raises(PermissionDeniedError) as e:
            Client(base, token=reader).cancel_task(created["task_uuid"])
        assert e.value.scope == "tasker_tests_py:write"

        # TASKER_TOKEN when no token is passed; the task names the token that created it.
        monkeypatch.setenv("TASKER_TOKEN", reader)
        task = Client(base).get_task(created["task_uuid"])
        assert task["created_by"] == {"kind": "token", "name": f"py-writer-{suffix}"}
        assert "tkr_" not in repr(Client(base))

        token("revoke", f"py-reader-{suffix}")
        with pytest.raises(AuthenticationError) as e:
            Client(base).get_task(created["task_uuid"])
        assert e.value.message == "the token has been revoked"
    finally:
        server.terminate()
        server.wait(timeout=10)
