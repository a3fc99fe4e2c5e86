"""The benchmark's 4-step linear workflow (a = n + 1, b = a * 2, c = b - 3, d = c * c) on DBOS
Transact, for `cargo make bench-peers` (tools/bench-peers.sh).

    python dbos_linear.py <URL of an empty PostgreSQL database> <sequential runs> <batch sizes>

DBOS keeps its workflow and step records in that database (its "system database"); steps run in
this process, as DBOS steps do. Prints one JSON object: for each sequential run the engine
latency (the workflow status's created_at to updated_at, in whole milliseconds as DBOS stores
them) and the client latency (start_workflow to get_result), then the steps/s of each batch of
workflows started at once (`batch sizes`: comma-separated).
"""

import json
import sys
import time
from importlib.metadata import version

from dbos import DBOS


@DBOS.step()
def step_a(n: int) -> int:
    return n + 1


@DBOS.step()
def step_b(a: int) -> int:
    return a * 2


@DBOS.step()
def step_c(b: int) -> int:
    return b - 3


@DBOS.step()
def step_d(c: int) -> int:
    return c * c


@DBOS.workflow()
def linear(n: int) -> int:
    return step_d(step_c(step_b(step_a(n))))


def main() -> None:
    url, runs = sys.argv[1], int(sys.argv[2])
    sizes = [int(s) for s in sys.argv[3].split(",") if s]
    DBOS(config={"name": "tasker_peer_bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    for n in range(10):  # warm-up
        DBOS.start_workflow(linear, n).get_result()
    engine_ms, client_ms = [], []
    for n in range(runs):
        t0 = time.perf_counter()
        handle = DBOS.start_workflow(linear, n % 1000)
        result = handle.get_result()
        client_ms.append((time.perf_counter() - t0) * 1000)
        if result != ((n % 1000 + 1) * 2 - 3) ** 2:
            raise SystemExit(f"wrong result {result} for n={n % 1000}")
        status = DBOS.get_workflow_status(handle.get_workflow_id())
        engine_ms.append(float(status.updated_at - status.created_at))
    batches = []
    for size in sizes:
        t0 = time.perf_counter()
        handles = [DBOS.start_workflow(linear, i % 1000) for i in range(size)]
        for handle in handles:
            handle.get_result()
        seconds = time.perf_counter() - t0
        batches.append({"tasks": size, "seconds": seconds, "steps_s": size * 4 / seconds})
    print(json.dumps({"dbos": version("dbos"), "engine_ms": engine_ms, "client_ms": client_ms, "batches": batches}))
    DBOS.destroy()


if __name__ == "__main__":
    main()
