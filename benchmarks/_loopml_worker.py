"""The loopml side of benchmarks/tracking.py: one workload per process, JSON on stdout.

Usage: ``python _loopml_worker.py '{"workload": "fluent", "dir": "/tmp/x", "params": {...}}'``

Each workload sets up its store outside the clock, times only the operation being compared,
then checks what got stored. The MLflow worker (``_mlflow_worker.py``) mirrors every function.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _data

import loopml
from loopml import Client, Metric

EXPERIMENT = "bench"


def _uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'loopml.db'}"


def _client(folder: Path) -> tuple[Client, str]:
    client = Client(_uri(folder))
    return client, client.create_experiment(EXPERIMENT)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def fluent(folder: Path, points: int) -> dict[str, Any]:
    """``with start_run(): log_metric(...)`` ``points`` times; the clock stops once stored."""
    client, _ = _client(folder)
    loopml.set_tracking_uri(_uri(folder))
    values = [_data.curve(i) for i in range(points)]
    start = time.perf_counter()
    with loopml.start_run(EXPERIMENT) as run:
        for step, value in enumerate(values):
            loopml.log_metric("loss", value, step=step)
        loop_done = time.perf_counter()
    loopml.flush()
    elapsed = time.perf_counter() - start
    stored = len(client.get_metric_history(run.run_id, "loss"))
    return {
        "value": points / elapsed,
        "seconds": elapsed,
        "count": points,
        "stored": stored,
        "extra": {"loop_s": loop_done - start, "end_and_flush_s": elapsed - (loop_done - start)},
    }


def _batches(points: int, size: int) -> list[list[Metric]]:
    return [
        [
            Metric("loss", _data.curve(i), _data.BASE_TIMESTAMP + i, i)
            for i in range(first, min(first + size, points))
        ]
        for first in range(0, points, size)
    ]


def batch(folder: Path, points: int, batch_size: int) -> dict[str, Any]:
    """``Client.log_batch`` with ``batch_size`` prebuilt points per call."""
    client, experiment_id = _client(folder)
    run_id = client.create_run(experiment_id).info.run_id
    batches = _batches(points, batch_size)
    start = time.perf_counter()
    for metrics in batches:
        client.log_batch(run_id, metrics=metrics)
    elapsed = time.perf_counter() - start
    stored = len(client.get_metric_history(run_id, "loss"))
    return {"value": points / elapsed, "seconds": elapsed, "count": points, "stored": stored}


def _count_runs(client: Client, experiment_id: str) -> int:
    total, token = 0, None
    while True:
        page = client.search_runs([experiment_id], max_results=10_000, page_token=token)
        total += len(page)
        token = page.next_page_token
        if token is None:
            return total


def many_runs(folder: Path, runs: int, n_params: int, n_metrics: int) -> dict[str, Any]:
    """create_run, log_batch(params + metrics), set_terminated, ``runs`` times."""
    client, experiment_id = _client(folder)
    data = list(_data.search_runs_data(runs, n_params, n_metrics))
    start = time.perf_counter()
    for run in data:
        run_id = client.create_run(experiment_id).info.run_id
        stamp = _now_ms()
        metrics = [Metric(key, value, stamp, 0) for key, value in run.metrics.items()]
        client.log_batch(run_id, metrics=metrics, params=run.params)
        client.set_terminated(run_id)
    elapsed = time.perf_counter() - start
    stored = _count_runs(client, experiment_id)
    return {"value": runs / elapsed, "seconds": elapsed, "count": runs, "stored": stored}


def _populate_search(client: Client, experiment_id: str, runs: int) -> None:
    for run in _data.search_runs_data(runs):
        run_id = client.create_run(experiment_id).info.run_id
        metrics = [
            Metric(key, value, _data.BASE_TIMESTAMP, 0) for key, value in run.metrics.items()
        ]
        client.log_batch(run_id, metrics=metrics, params=run.params)
        client.set_terminated(run_id)


def search(folder: Path, runs: int, queries: int) -> dict[str, Any]:
    """Median ms of ``search_runs`` (filter on a param and a metric, order by a metric)."""
    client, experiment_id = _client(folder)
    begin = time.perf_counter()
    _populate_search(client, experiment_id, runs)
    populate_s = time.perf_counter() - begin

    def query() -> list[Any]:
        return client.search_runs(
            [experiment_id], _data.SEARCH_FILTER, [_data.SEARCH_ORDER], _data.SEARCH_MAX_RESULTS
        )

    found = query()  # warm-up, untimed
    timings = []
    for _ in range(queries):
        start = time.perf_counter()
        query()
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {
        "value": timings[len(timings) // 2],
        "seconds": sum(timings) / 1000,
        "count": queries,
        "stored": runs,
        "extra": {
            "populate": "Client.create_run + log_batch + set_terminated per run",
            "populate_s": populate_s,
            "results": len(found),
            "first_losses": [round(r.data.metrics["loss"], 6) for r in found[:5]],
            "timings_ms": timings,
        },
    }


def history(folder: Path, points: int, reads: int) -> dict[str, Any]:
    """Median ms of ``get_metric_history`` of one ``points``-long metric."""
    client, experiment_id = _client(folder)
    run_id = client.create_run(experiment_id).info.run_id
    for metrics in _batches(points, 1000):
        client.log_batch(run_id, metrics=metrics)
    stored = len(client.get_metric_history(run_id, "loss"))  # warm-up, untimed
    timings = []
    for _ in range(reads):
        start = time.perf_counter()
        client.get_metric_history(run_id, "loss")
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return {
        "value": timings[len(timings) // 2],
        "seconds": sum(timings) / 1000,
        "count": reads,
        "stored": stored,
        "extra": {"populate": "Client.log_batch, 1,000 points per call", "timings_ms": timings},
    }


def _child(uri: str, points: int, go: Any, queue: Any) -> None:
    """One of the concurrent processes: its own run, ``log_metric`` in a loop, end of run."""
    errors: list[str] = []
    run_id = None
    loopml.set_tracking_uri(uri)
    Client(uri).get_experiment_by_name(EXPERIMENT)  # open the store before the clock starts
    values = [_data.curve(i) for i in range(points)]
    queue.put(("ready", None, []))
    go.wait()
    try:
        with loopml.start_run(EXPERIMENT) as run:
            run_id = run.run_id
            for step, value in enumerate(values):
                try:
                    loopml.log_metric("loss", value, step=step)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        loopml.flush()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    queue.put(("done", run_id, [len(errors), sorted(set(errors))[:3]]))


def concurrent(folder: Path, procs: int, points: int) -> dict[str, Any]:
    """``procs`` processes log ``points`` each into one store at once; wall time to all done."""
    client, _ = _client(folder)
    context = mp.get_context("spawn")
    go, queue = context.Event(), context.Queue()
    workers = [
        context.Process(target=_child, args=(_uri(folder), points, go, queue)) for _ in range(procs)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        queue.get(timeout=600)  # every process is ready
    start = time.perf_counter()
    go.set()
    done = [queue.get(timeout=3600) for _ in workers]
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.join()
    errors = sum(count for _, _, (count, _) in done)
    samples = sorted({sample for _, _, (_, some) in done for sample in some})
    stored = sum(len(client.get_metric_history(run_id, "loss")) for _, run_id, _ in done if run_id)
    return {
        "value": stored / elapsed,
        "seconds": elapsed,
        "count": procs * points,
        "stored": stored,
        "errors": errors,
        "extra": {"error_samples": samples[:3]},
    }


def info(folder: Path) -> dict[str, Any]:
    import sqlite3

    import sqlalchemy

    return {
        "loopml": loopml.__version__,
        "loopml_path": str(Path(loopml.__file__).parent),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
    }


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "fluent": fluent,
    "batch": batch,
    "runs": many_runs,
    "search": search,
    "history": history,
    "concurrent": concurrent,
    "info": info,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = WORKLOADS[spec["workload"]](Path(spec["dir"]), **spec.get("params", {}))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
