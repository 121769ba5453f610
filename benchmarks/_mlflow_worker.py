"""The MLflow side of benchmarks/tracking.py; runs in benchmarks/.venvs/mlflow, never in loopml's.

Usage: ``python _mlflow_worker.py '{"workload": "fluent", "dir": "/tmp/x", "params": {...}}'``

It mirrors ``_loopml_worker.py`` function by function: same data, same calls where the APIs
match, a SQLite store (``sqlite:///<dir>/mlflow.db``) and a local artifact folder. Progress goes
to stderr with plain prints; the JSON result is the last line on stdout.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _data

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

EXPERIMENT = "bench"


def _say(message: str) -> None:
    print(f"[mlflow worker] {message}", file=sys.stderr, flush=True)


def _uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def _client(folder: Path) -> tuple[MlflowClient, str]:
    """A client on a fresh store; creating the experiment also creates MLflow's tables."""
    client = MlflowClient(_uri(folder))
    artifacts = (folder / "artifacts").as_uri()
    return client, client.create_experiment(EXPERIMENT, artifact_location=artifacts)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def fluent(folder: Path, points: int) -> dict[str, Any]:
    """``with mlflow.start_run(): mlflow.log_metric(...)``; each call is synchronous."""
    client, experiment_id = _client(folder)
    mlflow.set_tracking_uri(_uri(folder))
    values = [_data.curve(i) for i in range(points)]
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for step, value in enumerate(values):
            mlflow.log_metric("loss", value, step=step)
        loop_done = time.perf_counter()
    elapsed = time.perf_counter() - start
    stored = len(client.get_metric_history(run.info.run_id, "loss"))
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
    """``MlflowClient.log_batch`` with ``batch_size`` prebuilt points per call."""
    client, experiment_id = _client(folder)
    run_id = client.create_run(experiment_id).info.run_id
    batches = _batches(points, batch_size)
    start = time.perf_counter()
    for metrics in batches:
        client.log_batch(run_id, metrics=metrics)
    elapsed = time.perf_counter() - start
    stored = len(client.get_metric_history(run_id, "loss"))
    return {"value": points / elapsed, "seconds": elapsed, "count": points, "stored": stored}


def _log_run(client: MlflowClient, experiment_id: str, run: _data.RunData, stamp: int) -> str:
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric(key, value, stamp, 0) for key, value in run.metrics.items()]
    params = [Param(key, value) for key, value in run.params.items()]
    client.log_batch(run_id, metrics=metrics, params=params)
    client.set_terminated(run_id)
    return run_id


def many_runs(folder: Path, runs: int, n_params: int, n_metrics: int) -> dict[str, Any]:
    """create_run, log_batch(params + metrics), set_terminated, ``runs`` times."""
    client, experiment_id = _client(folder)
    data = list(_data.search_runs_data(runs, n_params, n_metrics))
    start = time.perf_counter()
    for run in data:
        _log_run(client, experiment_id, run, _now_ms())
    elapsed = time.perf_counter() - start
    stored = len(client.search_runs([experiment_id], max_results=50_000))
    return {"value": runs / elapsed, "seconds": elapsed, "count": runs, "stored": stored}


def _insert_copies(db: Path, template_id: str, data: list[_data.RunData]) -> None:
    """Store ``data`` as copies of the run ``template_id`` with raw SQL, in one transaction.

    Every column of the template's ``runs`` row and tags is copied (new id, name, times and
    artifact URI); params, metrics and latest_metrics rows are written from ``data``, the way
    MLflow's ``log_batch`` writes them (latest_metrics is what its metric filters read).
    """
    con = sqlite3.connect(db)
    columns = [row[1] for row in con.execute("PRAGMA table_info(runs)")]
    template_row = con.execute("SELECT * FROM runs WHERE run_uuid = ?", (template_id,)).fetchone()
    template = dict(zip(columns, template_row, strict=True))
    template_tags = con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (template_id,))
    tags = template_tags.fetchall()
    runs, tag_rows, params, metrics = [], [], [], []
    for run in data:
        run_id = uuid.uuid4().hex
        name = f"run-{run.index}"
        row = dict(template, run_uuid=run_id, name=name)
        row["artifact_uri"] = template["artifact_uri"].replace(template_id, run_id)
        row["start_time"] = _data.BASE_TIMESTAMP + run.index
        row["end_time"] = _data.BASE_TIMESTAMP + run.index + 1
        runs.append(tuple(row[c] for c in columns))
        tag_rows += [(k, name if k == "mlflow.runName" else v, run_id) for k, v in tags]
        params += [(k, v, run_id) for k, v in run.params.items()]
        metrics += [(k, v, _data.BASE_TIMESTAMP, 0, 0, run_id) for k, v in run.metrics.items()]
    marks = ", ".join("?" for _ in columns)
    metric_columns = "(key, value, timestamp, step, is_nan, run_uuid)"
    with con:
        con.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})", runs)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        con.executemany(f"INSERT INTO metrics {metric_columns} VALUES (?, ?, ?, ?, ?, ?)", metrics)
        con.executemany(
            f"INSERT INTO latest_metrics {metric_columns} VALUES (?, ?, ?, ?, ?, ?)", metrics
        )
    con.close()


def search(folder: Path, runs: int, queries: int, populate: str = "sql") -> dict[str, Any]:
    """Median ms of ``search_runs`` (filter on a param and a metric, order by a metric).

    ``populate="sql"``: the first run goes through the API, the others are inserted as copies
    of it with raw SQL (logging 10,000 runs through MLflow's API takes many minutes here).
    ``populate="api"``: every run through create_run + log_batch + set_terminated.
    """
    client, experiment_id = _client(folder)
    data = list(_data.search_runs_data(runs))
    begin = time.perf_counter()
    if populate == "api":
        for run in data:
            _log_run(client, experiment_id, run, _data.BASE_TIMESTAMP)
        how = "MlflowClient.create_run + log_batch + set_terminated per run"
    else:
        template_id = _log_run(client, experiment_id, data[0], _data.BASE_TIMESTAMP)
        _insert_copies(folder / "mlflow.db", template_id, data[1:])
        how = "1 run through the API, the rest as raw-SQL copies of it (runs, tags, params, "
        how += "metrics, latest_metrics)"
    populate_s = time.perf_counter() - begin
    stored = len(client.search_runs([experiment_id], max_results=50_000))

    def query() -> list[Any]:
        return client.search_runs(
            [experiment_id],
            _data.SEARCH_FILTER,
            max_results=_data.SEARCH_MAX_RESULTS,
            order_by=[_data.SEARCH_ORDER],
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
        "stored": stored,
        "extra": {
            "populate": how,
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
    begin = time.perf_counter()
    for metrics in _batches(points, 1000):
        client.log_batch(run_id, metrics=metrics)
    _say(f"history: {points:,} points stored in {time.perf_counter() - begin:.1f}s")
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
        "extra": {
            "populate": "MlflowClient.log_batch, 1,000 points per call",
            "timings_ms": timings,
        },
    }


def _child(uri: str, experiment_id: str, points: int, go: Any, queue: Any) -> None:
    """One of the concurrent processes: its own run, ``log_metric`` in a loop, end of run."""
    errors: list[str] = []
    run_id = None
    mlflow.set_tracking_uri(uri)
    MlflowClient(uri).get_experiment(experiment_id)  # open the store before the clock starts
    values = [_data.curve(i) for i in range(points)]
    queue.put(("ready", None, []))
    go.wait()
    try:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            run_id = run.info.run_id
            for step, value in enumerate(values):
                try:
                    mlflow.log_metric("loss", value, step=step)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    queue.put(("done", run_id, [len(errors), sorted(set(errors))[:3]]))


def concurrent(folder: Path, procs: int, points: int) -> dict[str, Any]:
    """``procs`` processes log ``points`` each into one store at once; wall time to all done."""
    client, experiment_id = _client(folder)
    context = mp.get_context("spawn")
    go, queue = context.Event(), context.Queue()
    workers = [
        context.Process(target=_child, args=(_uri(folder), experiment_id, points, go, queue))
        for _ in range(procs)
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
    import sqlalchemy

    return {
        "mlflow": mlflow.__version__,
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
