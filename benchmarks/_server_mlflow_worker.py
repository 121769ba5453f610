"""The MLflow client side of benchmarks/server.py; runs in benchmarks/.venvs/mlflow.

Usage: ``python _server_mlflow_worker.py '{"workload": "fluent", "dir": "/tmp/x", "params": {}}'``
with ``MLFLOW_TRACKING_URI=http://127.0.0.1:PORT`` pointing at a running ``mlflow server``.

It mirrors ``_server_loopml_worker.py`` function by function: the same data, the same calls
where the APIs match. The concurrent clients use ``MlflowClient.log_batch`` (1,000 points a
call), MLflow's fastest normal way to log many points, or with ``mode="fluent"`` its fluent
``log_metric``, one synchronous request per point (a reference row).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _data

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

KEY = "loss"


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _counts(client: MlflowClient, run_id: str, points: int) -> dict[str, int]:
    """What the server holds for the run's metric: points, lost steps, duplicated points."""
    history = client.get_metric_history(run_id, KEY)
    steps = {m.step for m in history}
    return {
        "stored": len(history),
        "lost": len(set(range(points)) - steps),
        "duplicated": len(history) - len(steps),
    }


def _batches(points: int, size: int) -> list[list[Metric]]:
    return [
        [
            Metric(KEY, _data.curve(i), _data.BASE_TIMESTAMP + i, i)
            for i in range(first, min(first + size, points))
        ]
        for first in range(0, points, size)
    ]


def fluent(folder: Path, points: int) -> dict[str, Any]:
    """``with mlflow.start_run(): mlflow.log_metric(...)``; each call is a synchronous request."""
    client = MlflowClient()
    experiment_id = client.create_experiment("fluent")
    values = [_data.curve(i) for i in range(points)]
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for step, value in enumerate(values):
            mlflow.log_metric(KEY, value, step=step)
        loop_done = time.perf_counter()
    elapsed = time.perf_counter() - start
    counts = _counts(client, run.info.run_id, points)
    return {
        "value": points / elapsed,
        "seconds": elapsed,
        "count": points,
        **counts,
        "extra": {"loop_s": loop_done - start, "end_and_flush_s": elapsed - (loop_done - start)},
    }


def batch(folder: Path, points: int, batch_size: int) -> dict[str, Any]:
    """``MlflowClient.log_batch`` with ``batch_size`` prebuilt points per call."""
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("batch")).info.run_id
    batches = _batches(points, batch_size)
    start = time.perf_counter()
    for metrics in batches:
        client.log_batch(run_id, metrics=metrics)
    elapsed = time.perf_counter() - start
    counts = _counts(client, run_id, points)
    return {"value": points / elapsed, "seconds": elapsed, "count": points, **counts}


def history(folder: Path, points: int, reads: int) -> dict[str, Any]:
    """Median seconds of ``get_metric_history`` of one ``points``-long metric."""
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("history")).info.run_id
    for metrics in _batches(points, 1000):
        client.log_batch(run_id, metrics=metrics)
    counts = _counts(client, run_id, points)  # also the untimed warm-up read
    timings = []
    for _ in range(reads):
        start = time.perf_counter()
        got = client.get_metric_history(run_id, KEY)
        timings.append(time.perf_counter() - start)
        if len(got) != points:
            counts["stored"] = len(got)
    timings.sort()
    return {
        "value": timings[len(timings) // 2],
        "seconds": sum(timings),
        "count": points,
        **counts,
        "extra": {
            "populate": "MlflowClient.log_batch, 1,000 points per call",
            "timings_s": timings,
        },
    }


def _child(
    experiment_id: str, points: int, batch_size: int, mode: str, go: Any, queue: Any
) -> None:
    """One concurrent client. ``mode="batch"``: create_run, log_batch of ``batch_size``
    points, set_terminated; ``mode="fluent"``: ``mlflow.log_metric`` per point in start_run."""
    errors: list[str] = []
    run_id = None
    client = MlflowClient()
    client.get_experiment(experiment_id)  # connect before the clock starts
    batches = _batches(points, batch_size)
    values = [_data.curve(i) for i in range(points)]
    queue.put(("ready", None, []))
    go.wait()
    try:
        if mode == "fluent":
            with mlflow.start_run(experiment_id=experiment_id) as run:
                run_id = run.info.run_id
                for step, value in enumerate(values):
                    try:
                        mlflow.log_metric(KEY, value, step=step)
                    except Exception as exc:
                        errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        else:
            run_id = client.create_run(experiment_id).info.run_id
            for metrics in batches:
                try:
                    client.log_batch(run_id, metrics=metrics)
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            client.set_terminated(run_id)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    queue.put(("done", run_id, [len(errors), sorted(set(errors))[:3]]))


def concurrent(
    folder: Path, procs: int, points: int, batch_size: int = 1000, mode: str = "batch"
) -> dict[str, Any]:
    """``procs`` client processes log ``points`` each at once; wall time until all are done."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"concurrent-{mode}")
    context = mp.get_context("spawn")
    go, queue = context.Event(), context.Queue()
    workers = [
        context.Process(target=_child, args=(experiment_id, points, batch_size, mode, go, queue))
        for _ in range(procs)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        queue.get(timeout=600)  # every process has imported mlflow and reached the server
    start = time.perf_counter()
    go.set()
    done = [queue.get(timeout=3600) for _ in workers]
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.join()
    errors = sum(count for _, _, (count, _) in done)
    samples = sorted({sample for _, _, (_, some) in done for sample in some})
    totals = {"stored": 0, "lost": 0, "duplicated": 0}
    run_ids = [run_id for _, run_id, _ in done if run_id]
    for run_id in run_ids:
        for name, value in _counts(client, run_id, points).items():
            totals[name] += value
    totals["lost"] += (procs - len(run_ids)) * points  # processes that never got a run
    return {
        "value": totals["stored"] / elapsed,
        "seconds": elapsed,
        "count": procs * points,
        **totals,
        "errors": errors,
        "extra": {"error_samples": samples[:3], "runs": len(set(run_ids)), "mode": mode},
    }


def artifact(folder: Path, source: str, sha256: str) -> dict[str, Any]:
    """``mlflow.log_artifact`` of ``source`` in a run, then ``MlflowClient.download_artifacts``.

    The server proxies both (``--serve-artifacts``, MLflow 3's default). A 1 KB file goes up
    and down first (untimed), as on the loopml side.
    """
    client = MlflowClient()
    experiment_id = client.create_experiment("artifact")
    small = folder / "warmup.txt"
    small.write_bytes(b"w" * 1024)
    name = Path(source).name
    (folder / "warm").mkdir()
    (folder / "down").mkdir()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        run_id = run.info.run_id
        mlflow.log_artifact(str(small))
        client.download_artifacts(run_id, small.name, str(folder / "warm"))
        time.sleep(1.0)  # the parent's idle RSS window
        marks = {"upload_start": time.time()}
        start = time.perf_counter()
        mlflow.log_artifact(source)
        upload_s = time.perf_counter() - start
        marks["upload_end"] = time.time()
        time.sleep(0.5)
        marks["download_start"] = time.time()
        start = time.perf_counter()
        local = client.download_artifacts(run_id, name, str(folder / "down"))
        download_s = time.perf_counter() - start
        marks["download_end"] = time.time()
    got = _sha256(local)
    size = Path(local).stat().st_size
    return {
        "value": upload_s,
        "seconds": upload_s + download_s,
        "count": size,
        "stored": size,
        "extra": {
            "upload_s": upload_s,
            "download_s": download_s,
            "checksum_ok": got == sha256,
            "sha256": got,
            "marks": marks,
            "artifact_uri": run.info.artifact_uri,
        },
    }


def warmup(folder: Path) -> dict[str, Any]:
    """Untimed: one call of each kind the workloads make, so the server's first requests (its
    lazy imports and set-up) fall outside every clock."""
    client = MlflowClient()
    experiment_id = client.create_experiment("warmup")
    small = folder / "warmup.txt"
    small.write_bytes(b"w" * 1024)
    (folder / "down").mkdir()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for step in range(10):
            mlflow.log_metric(KEY, _data.curve(step), step=step)
        client.log_batch(run.info.run_id, metrics=_batches(10, 10)[0])
        client.get_metric_history(run.info.run_id, KEY)
        mlflow.log_artifact(str(small))
        client.download_artifacts(run.info.run_id, small.name, str(folder / "down"))
    return {"value": 0}


def info(folder: Path) -> dict[str, Any]:
    import importlib.metadata as metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "mlflow": mlflow.__version__,
        "python": sys.version.split()[0],
        **{name: version(name) for name in ("uvicorn", "fastapi", "flask", "sqlalchemy")},
    }


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "fluent": fluent,
    "batch": batch,
    "history": history,
    "concurrent": concurrent,
    "artifact": artifact,
    "warmup": warmup,
    "info": info,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = WORKLOADS[spec["workload"]](Path(spec["dir"]), **spec.get("params", {}))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
