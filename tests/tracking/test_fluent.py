"""The fluent API: active runs, buffered metrics, failures, nesting, threads and tasks."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import loopml
from loopml.entities import RunStatus
from loopml.errors import InvalidStateError, ParamConflictError


@pytest.fixture
def uri(tmp_path: Path) -> str:
    loopml.set_tracking_uri(str(tmp_path / "store"))
    yield str(tmp_path / "store")
    loopml.set_tracking_uri(None)


def test_issue_example(uri: str, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<h1>report</h1>")
    with loopml.start_run(experiment="churn", tags={"team": "growth"}) as run:
        loopml.log_params({"model": "rf", "n_estimators": 200})
        for step in range(10_000):
            loopml.log_metric("loss", 1 / (step + 1), step=step)
        loopml.log_artifact(report)
        loopml.log_dict({"classes": [0, 1]}, "meta/classes.json")
    runs = loopml.search_runs(
        "churn", filter="metrics.loss < 0.01 and params.model = 'rf'", order_by=["metrics.loss ASC"]
    )
    assert [r.run_id for r in runs] == [run.run_id]
    found = runs[0]
    assert found.info.status is RunStatus.FINISHED
    assert found.data.params == {"model": "rf", "n_estimators": "200"}
    assert found.data.tags == {"team": "growth"}
    assert found.data.metrics["loss"] == 1 / 10_000
    client = loopml.Client(uri)
    assert len(client.get_metric_history(run.run_id, "loss")) == 10_000
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["meta", "report.html"]
    out = Path(client.download_artifacts(run.run_id, "meta/classes.json", tmp_path / "dl"))
    assert out.read_text().replace(" ", "").replace("\n", "") == '{"classes":[0,1]}'


def test_source_info_is_recorded(uri: str) -> None:
    with loopml.start_run() as run:
        pass
    info = loopml.Client(uri).get_run(run.run_id).info
    assert info.source.user
    assert info.source.host
    assert info.source.python_version == ".".join(map(str, sys.version_info[:3]))
    assert "loopml" in info.source.packages
    assert loopml.Client(uri).get_experiment(info.experiment_id).name == "Default"


def test_run_that_raises_is_failed(uri: str) -> None:
    with pytest.raises(ZeroDivisionError), loopml.start_run(experiment="e") as run:  # noqa: PT012
        loopml.log_metric("before", 1.0)
        _ = 1 / 0
    got = loopml.Client(uri).get_run(run.run_id)
    assert got.info.status is RunStatus.FAILED
    assert "ZeroDivisionError" in (got.info.error or "")
    assert got.data.metrics == {"before": 1.0}  # buffered point flushed on the way out
    assert loopml.active_run() is None


def test_no_active_run_and_double_start(uri: str) -> None:
    with pytest.raises(InvalidStateError, match="No active run"):
        loopml.log_metric("x", 1.0)
    with loopml.start_run(), pytest.raises(InvalidStateError, match="nested=True"):
        loopml.start_run()


def test_nested_runs(uri: str) -> None:
    with loopml.start_run(experiment="nest") as parent:
        with loopml.start_run(nested=True) as child:
            assert loopml.active_run() is child
            loopml.log_param("level", "child")
        assert loopml.active_run() is parent
    client = loopml.Client(uri)
    assert client.get_run(child.run_id).info.parent_run_id == parent.run_id
    children = client.search_runs(parent.info.experiment_id, f"parent_run_id = '{parent.run_id}'")
    assert [r.run_id for r in children] == [child.run_id]


def test_param_conflict_through_fluent(uri: str) -> None:
    with loopml.start_run():
        loopml.log_param("lr", 0.1)
        loopml.log_param("lr", 0.1)
        with pytest.raises(ParamConflictError, match="immutable"):
            loopml.log_param("lr", 0.2)


def test_default_steps_increase(uri: str) -> None:
    with loopml.start_run() as run:
        for value in (3.0, 2.0, 1.0):
            loopml.log_metric("loss", value)
        loopml.log_metrics({"a": 1.0, "b": math.inf})
    history = loopml.Client(uri).get_metric_history(run.run_id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert loopml.Client(uri).get_run(run.run_id).data.metrics["b"] == math.inf


def test_resume_run(uri: str) -> None:
    with loopml.start_run() as first:
        loopml.log_metric("x", 1.0, step=0)
    with loopml.start_run(run_id=first.run_id):
        loopml.log_metric("x", 2.0, step=1)
    got = loopml.Client(uri).get_run(first.run_id)
    assert got.info.status is RunStatus.FINISHED
    assert got.data.metrics == {"x": 2.0}


def test_resumed_failed_run_is_running_again(uri: str) -> None:
    with pytest.raises(ValueError), loopml.start_run() as first:
        raise ValueError("first attempt")
    with loopml.start_run(run_id=first.run_id) as again:
        info = again.client.store.get_run(first.run_id).info
        assert info.status is RunStatus.RUNNING
        assert info.end_time is None
        assert info.error is None
        stale = again.client.store.mark_stale_runs_killed(3600)
        assert stale == []  # it sends heartbeats again
    assert loopml.Client(uri).get_run(first.run_id).info.status is RunStatus.FINISHED


def test_log_text_and_figure(uri: str, tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    assert matplotlib
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    with loopml.start_run() as run:
        loopml.log_text("hello", "notes/readme.txt")
        loopml.log_figure(fig, "plots/curve.png")
        folder = tmp_path / "folder"
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text("a")
        (folder / "sub" / "b.txt").write_text("b")
        loopml.log_artifacts(folder, "data")
    client = loopml.Client(uri)
    paths = [a.path for a in client.list_artifacts(run.run_id, recursive=True)]
    assert paths == ["data/a.txt", "data/sub/b.txt", "notes/readme.txt", "plots/curve.png"]
    png = Path(client.download_artifacts(run.run_id, "plots/curve.png", tmp_path / "o"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    folder_out = Path(client.download_artifacts(run.run_id, "data", tmp_path / "o2"))
    assert (folder_out / "sub" / "b.txt").read_text() == "b"


def test_threads_have_their_own_runs(uri: str) -> None:
    """RELIABILITY.md L2: every metric lands in its own run, no cross-talk."""
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            assert loopml.active_run() is None
            with loopml.start_run(experiment="threads", run_name=f"t{index}") as run:
                for step in range(200):
                    loopml.log_metric("who", float(index), step=step)
                results[index] = run.run_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    client = loopml.Client(uri)
    for index, run_id in results.items():
        history = client.get_metric_history(run_id, "who")
        assert len(history) == 200
        assert {p.value for p in history} == {float(index)}


def test_asyncio_tasks_have_their_own_runs(uri: str) -> None:
    """RELIABILITY.md L2 for asyncio: each task's run is its own."""

    async def work(index: int) -> str:
        with loopml.start_run(experiment="tasks") as run:
            for step in range(50):
                loopml.log_metric("who", float(index), step=step)
                await asyncio.sleep(0)
            return run.run_id

    async def main() -> list[str]:
        return await asyncio.gather(*(work(i) for i in range(6)))

    run_ids = asyncio.run(main())
    client = loopml.Client(uri)
    for index, run_id in enumerate(run_ids):
        assert {p.value for p in client.get_metric_history(run_id, "who")} == {float(index)}
    assert loopml.active_run() is None


def test_system_metrics(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_SYSTEM_METRICS_INTERVAL", "0.05")
    with loopml.start_run(system_metrics=True) as run:
        threading.Event().wait(0.3)
    metrics = loopml.Client(uri).get_run(run.run_id).data.metrics
    assert 0 <= metrics["system/cpu_percent"] <= 100 * 64
    assert metrics["system/memory_used_mb"] > 0
    assert metrics["system/process_rss_mb"] > 0


def _run_script(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_metrics_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    """A run left open at exit is ended and its buffered points are written."""
    done = _run_script(
        """
        import loopml
        run = loopml.start_run(experiment="exit")
        for i in range(5000):
            loopml.log_metric("x", float(i), step=i)
        print(run.run_id)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    client = loopml.Client(str(tmp_path / ".loopml"))
    run = client.get_run(done.stdout.strip())
    assert run.info.status is RunStatus.FINISHED
    assert len(client.get_metric_history(run.run_id, "x")) == 5000


def test_uncaught_exception_marks_open_run_failed(tmp_path: Path) -> None:
    done = _run_script(
        """
        import loopml
        run = loopml.start_run(experiment="crash")
        loopml.log_metric("x", 1.0)
        print(run.run_id, flush=True)
        raise SystemError("boom")
        """,
        tmp_path,
    )
    assert done.returncode == 1
    client = loopml.Client(str(tmp_path / ".loopml"))
    run = client.get_run(done.stdout.strip())
    assert run.info.status is RunStatus.FAILED
    assert "boom" in (run.info.error or "")
    assert run.data.metrics == {"x": 1.0}


@pytest.mark.parametrize(
    "name", ["emoji 🚀.txt", "percent %2e%2e.txt", "hash #?.txt", "e\u0301.txt"]
)
def test_odd_artifact_names_download_exactly(uri: str, tmp_path: Path, name: str) -> None:
    """RELIABILITY.md V4: odd names round-trip through logging and download."""
    source = tmp_path / "src" / name
    source.parent.mkdir()
    source.write_text(name)
    with loopml.start_run() as run:
        loopml.log_artifact(source, "odd")
    client = loopml.Client(uri)
    assert [a.path for a in client.list_artifacts(run.run_id, "odd")] == [f"odd/{name}"]
    out = Path(client.download_artifacts(run.run_id, "odd", tmp_path / "dl"))
    assert (out / name).read_text() == name


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_does_not_end_or_duplicate(uri: str) -> None:
    """A forked worker neither ends the parent's run at its exit nor re-writes its buffer."""
    with loopml.start_run() as run:
        loopml.log_metric("parent", 1.0, step=0)  # still buffered at fork time
        pid = os.fork()
        if pid == 0:  # the child: log one point of its own, then exit normally
            code = 0
            try:
                loopml.log_metric("child", 2.0, step=0)
                loopml.flush()
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert loopml.Client(uri).get_run(run.run_id).info.status is RunStatus.RUNNING
    client = loopml.Client(uri)
    assert client.get_run(run.run_id).data.metrics == {"parent": 1.0, "child": 2.0}
    assert len(client.get_metric_history(run.run_id, "parent")) == 1
