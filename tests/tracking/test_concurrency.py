"""Several processes against one store: migrations, writers, heartbeats (RELIABILITY.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.entities import RunStatus
from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore
from loopml.storage.sql.migrations import VERSION_TABLE
from loopml.testing.postgres import temporary_database

pytestmark = pytest.mark.slow


def _spawn(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    """Wait for every process (so none is left with open pipes), then check each."""
    results = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
    return [out for out, _ in results]


_OPEN_FRESH = """
import sys
from loopml.storage.sql import SqlStore
store = SqlStore(sys.argv[1], sys.argv[2])
store.create_experiment(f"proc-{sys.argv[3]}")
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database nobody has opened yet, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails in CI) without PostgreSQL
    with temporary_database() as url:
        yield url


def test_four_processes_open_a_fresh_store(fresh_url: str, tmp_path: Path) -> None:
    """F6: exactly one migrates, the others wait, all start."""
    url = fresh_url
    blobs = str(tmp_path / "blobs")
    _finish([_spawn(_OPEN_FRESH, url, blobs, str(i)) for i in range(4)])
    store = SqlStore(url, BlobStore(blobs))
    names = sorted(e.name for e in store.list_experiments())
    assert names == [f"proc-{i}" for i in range(4)]
    with store._db.engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {VERSION_TABLE}").scalar() == 1
    store.close()


_WRITER = """
import json, sys, time
import loopml
client = loopml.Client(sys.argv[1])
run_id, count = sys.argv[2], int(sys.argv[3])
latencies = []
for step in range(count):
    start = time.perf_counter()
    client.log_metric(run_id, "value", float(step), step=step)
    latencies.append(time.perf_counter() - start)
start = time.perf_counter()
client.flush()
flush = time.perf_counter() - start
latencies.sort()
print(json.dumps({"p99": latencies[int(len(latencies) * 0.99)], "flush": flush}))
"""


def test_sixteen_writers(fresh_url: str, tmp_path: Path) -> None:
    """L1: 16 concurrent writers x 10k points: none lost, none duplicated, no lock errors."""
    url = fresh_url
    store = SqlStore(url, BlobStore(str(tmp_path / "blobs")))
    exp = store.create_experiment("l1")
    run_ids = [store.create_run(exp.experiment_id).run_id for _ in range(16)]
    env = {"LOOPML_ARTIFACTS_URI": str(tmp_path / "blobs"), "LOOPML_FLUSH_MAX_POINTS": "2000"}
    procs = [_spawn(_WRITER, url, run_id, "10000", env=env) for run_id in run_ids]
    reports = [json.loads(out) for out in _finish(procs)]
    for run_id in run_ids:
        values = [p.value for p in store.get_metric_history(run_id, "value")]
        assert values == [float(i) for i in range(10_000)]
    p99 = max(r["p99"] for r in reports) * 1e6
    print(f"\nL1 {url.split(':')[0]}: worst p99 log_metric latency {p99:.1f} us")
    store.close()


_FLUENT_WRITER = """
import sys
import loopml
with loopml.start_run(experiment="four") as run:
    for step in range(2000):
        loopml.log_metric("x", float(step), step=step)
print(run.run_id)
"""


def test_four_processes_log_to_one_sqlite_store(tmp_path: Path) -> None:
    """Fast logging: 4 processes x 2,000 points to one SQLite store, every point stored."""
    env = {"LOOPML_TRACKING_URI": str(tmp_path / "store")}
    outputs = _finish([_spawn(_FLUENT_WRITER, env=env) for _ in range(4)])
    client = loopml.Client(str(tmp_path / "store"))
    for out in outputs:
        run = client.get_run(out.strip())
        assert run.info.status is RunStatus.FINISHED
        assert len(client.get_metric_history(run.run_id, "x")) == 2000


_DOOMED = """
import time
import loopml
with loopml.start_run(experiment="doomed") as run:
    loopml.log_metric("x", 1.0)
    loopml.flush()
    print(run.run_id, flush=True)
    time.sleep(120)
"""


def test_killed_process_run_becomes_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F2: a run whose process was kill -9'd is marked KILLED within the heartbeat timeout x 2."""
    store_dir = str(tmp_path / "store")
    env = {
        "LOOPML_TRACKING_URI": store_dir,
        "LOOPML_HEARTBEAT_INTERVAL": "0.2",
    }
    proc = _spawn(_DOOMED, env=env)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read() if proc.stderr else ""
    monkeypatch.setenv("LOOPML_HEARTBEAT_INTERVAL", "0.2")
    monkeypatch.setenv("LOOPML_HEARTBEAT_TIMEOUT", "3")
    client = loopml.Client(store_dir)
    time.sleep(1.5)
    assert client.get_run(run_id).info.status is RunStatus.RUNNING  # still beating
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    deadline = time.monotonic() + 2 * 3.0 + 1.0
    status = RunStatus.RUNNING
    while time.monotonic() < deadline and status is RunStatus.RUNNING:
        time.sleep(0.25)
        status = client.get_run(run_id).info.status
    run = client.get_run(run_id)
    assert run.info.status is RunStatus.KILLED
    assert run.data.metrics == {"x": 1.0}


_BATCH_WRITER = """
import os, sys
from loopml.entities import Metric
from loopml.storage.blobs import BlobStore
from loopml.storage.sql import SqlStore
store = SqlStore(sys.argv[1], BlobStore(sys.argv[2]))
run_id = sys.argv[3]
payload = os.urandom(256 * 1024)
print("ready", flush=True)
batch = 0
while True:
    start = batch * 1000
    points = [Metric("x", float(i), 1000 + i, i) for i in range(start, start + 1000)]
    store.log_batch(run_id, points, params={f"p{batch}": str(batch)})
    src = sys.argv[4] + f"/f{batch % 2}.bin"
    with open(src, "wb") as fh:
        fh.write(payload + batch.to_bytes(8, "big"))
    store.put_artifact(run_id, f"files/{batch}.bin", src)
    batch += 1
"""


def test_kill_during_writes_leaves_whole_batches(tmp_path: Path) -> None:
    """F1 for the direct store: kill -9 a writer in the middle of batch and artifact writes,
    three times against the same database.

    Each time the database passes its integrity check, every metric batch is wholly there or
    wholly absent (with its param), and every recorded artifact reads back verified."""
    url = f"sqlite:///{tmp_path / 'f1.db'}"
    blobs = str(tmp_path / "blobs")
    store = SqlStore(url, BlobStore(blobs))
    experiment_id = store.create_experiment("f1").experiment_id
    work = tmp_path / "work"
    work.mkdir()
    for delay in (0.0, 0.05, 0.13):
        run_id = store.create_run(experiment_id).run_id
        proc = _spawn(_BATCH_WRITER, url, blobs, run_id, str(work))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not store.get_metric_history(run_id, "x") and time.monotonic() < deadline:
            time.sleep(0.01)  # until the writer is in full flow
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        with store._db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        history = store.get_metric_history(run_id, "x")
        assert len(history) % 1000 == 0
        batches = len(history) // 1000
        assert batches > 0
        assert [p.step for p in history] == list(range(batches * 1000))
        params = store.get_run(run_id).data.params
        assert set(params) == {f"p{b}" for b in range(batches)}
        for info in store.list_artifacts(run_id, "files"):
            store.get_artifact(run_id, info.path, tmp_path / "check.bin")  # verified read
    store.close()
