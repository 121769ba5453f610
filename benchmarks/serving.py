"""Serving benchmark: ``loopml serve`` vs ``mlflow models serve``, BentoML and MLServer, under
the same load from one generator, one server at a time, in one run.

    python3 benchmarks/serving.py --quick                  # smoke run: c=1 and 64, 3 s each
    python3 benchmarks/serving.py                          # c=1, 16, 64, 10 s each, 3 repeats
    python3 benchmarks/serving.py --only mlflow,bentoml,mlserver --models rf
    python3 benchmarks/serving.py --repeats 1 --json benchmarks/.work/serving.json

The models: ``LogisticRegression`` (cheap to predict) and ``RandomForestClassifier(100 trees)``
(about 10 ms a predict call, whatever the batch size), fitted once in this interpreter on
scikit-learn's breast-cancer data (569 rows x 30 floats, as a numpy array: every server gets a
plain float64 tensor) and dumped with joblib. Each tool's worker, in the tool's own virtualenv,
saves them in the tool's format (an MLflow model folder; BentoML's model store and a generated
service file, plain and with ``batchable=True``; an MLServer model repository with its
scikit-learn runtime and adaptive batching; a loopml store with the models logged, registered
and aliased ``champion``) and checks that they predict what the fitted model does.

Each server then starts on its own, pinned to the CPUs the load generator does not use, with
one worker; the cold start is the time from the command to its first 200 answer to a predict
request. Twenty single-row requests check its predictions; then, at each concurrency, a
warm-up and a timed run of single-row JSON requests (the dataset's rows in turn, one request
per row, in the server's own protocol) over keep-alive connections. The generator is ``wrk``
(a Lua script for the bodies and a JSON summary) or, without wrk, a bounded asyncio client;
the peak RSS of the server's process tree is sampled throughout (psutil). loopml also gets a
burst of ``--burst-connections`` connections, far over its queue, to see it shed load. The
in-process ``model.predict`` throughput at 1 and 64 rows a call is the limit for any server.

Peers never enter loopml's environment: ``benchmarks/.venvs/mlflow`` (shared with the other
benchmarks), ``benchmarks/.venvs/serving-bentoml`` and ``benchmarks/.venvs/serving-mlserver``
are created on first use with the same scikit-learn as this interpreter. loopml runs from a
snapshot of src/loopml. Until ``loopml.serving`` exists the loopml rows are skipped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving_data as data
from _common import (
    BENCH_DIR,
    WORK_DIR,
    WorkerError,
    cpu_model,
    ensure_distribution,
    ensure_venv,
    git_state,
    log,
    median,
    ram_gib,
    run_json,
    snapshot_loopml,
)
from _serving_load import LoadResult, Target, find_wrk, run_asyncio, run_wrk
from _serving_servers import (
    HOST,
    Launch,
    ServerProcess,
    body_for,
    ensure_peer_venv,
    free_port,
    get,
    path_for,
    post,
    predictions_in,
)

from tracking import MLFLOW_ENV, MLFLOW_VERSION

TOOLS = ("loopml", "mlflow", "bentoml", "mlserver")
SNAPSHOT_DIR = WORK_DIR / "serving" / "snapshot"
WORKERS = {
    "loopml": BENCH_DIR / "_serving_loopml_worker.py",
    "mlflow": BENCH_DIR / "_serving_mlflow_worker.py",
    "bentoml": BENCH_DIR / "_serving_bentoml_worker.py",
    "mlserver": BENCH_DIR / "_serving_mlserver_worker.py",
}
WORKER_TIMEOUT_S = 900

CONCURRENCY = (1, 16, 64)
QUICK_CONCURRENCY = (1, 64)
TOP = 64  # the concurrency the throughput targets are set at
DURATION_S = 10.0
QUICK_DURATION_S = 3.0
WARMUP_S = 3.0
QUICK_WARMUP_S = 1.0
REPEATS = 3
INPROCESS_S = 2.0
CHECK_ROWS = 20
MAX_BATCH_SIZE = 64
MLSERVER_BATCH_TIME_MS = 2.0  # MLServer's max_batch_time (it batches only when it is > 0)
BENTOML_MAX_LATENCY_MS = 1000  # BentoML's latency budget: requests over it get a 503
MAX_QUEUE_ROWS = 256  # loopml's --max-queue-rows: the burst below is 4 times that
BURST_CONNECTIONS = 1024
BURST_S = 5.0
QUICK_BURST_S = 3.0
REFUSAL_P99_MS = 100.0  # "at once"
P99_LIMIT_MS = 150.0
BUSY_GENERATOR = 0.9  # CPU time / wall time of the load generator past which results say so


@dataclass(frozen=True)
class Variant:
    name: str
    tool: str
    label: str
    protocol: str  # see _serving_servers.body_for


VARIANTS = (
    Variant("loopml", "loopml", "loopml serve", "loopml"),
    Variant("loopml-v2", "loopml", "loopml serve, V2 /infer", "v2"),
    Variant("loopml-bare", "loopml", "loopml serve --no-metrics --no-prediction-log", "loopml"),
    Variant("mlflow", "mlflow", "mlflow models serve", "mlflow"),
    Variant("bentoml", "bentoml", "BentoML", "bentoml"),
    Variant("bentoml-batched", "bentoml", "BentoML, adaptive batching", "bentoml"),
    Variant("mlserver-batched", "mlserver", "MLServer sklearn, adaptive batching", "mlserver"),
)
VARIANT = {v.name: v for v in VARIANTS}


@dataclass
class Tool:
    """A tool ready to serve: its interpreter, environment and what its worker saved."""

    name: str
    python: Path
    env: dict[str, str]
    folder: Path  # where its worker saved the models
    saved: dict[str, Any]


@dataclass
class Settings:
    models: list[str]
    tools: list[str]
    concurrency: list[int]
    duration_s: float
    warmup_s: float
    repeats: int
    burst_connections: int
    burst_s: float
    max_queue_rows: int
    loopml_max_latency_ms: float | None  # None: loopml serve's own default
    mlserver_batch_time_ms: float
    generator: str  # "wrk" or "asyncio"
    wrk: str | None
    server_pin: list[str]
    load_pin: list[str]
    loopml_command: str | None
    pinning: str
    quick: bool


@dataclass
class LoadSample:
    model: str
    variant: str
    repeat: int
    concurrency: int
    result: dict[str, Any]


@dataclass
class ServerSample:
    model: str
    variant: str
    repeat: int
    cold_start_s: float | None
    memory: dict[str, Any]
    overload: dict[str, Any] | None = None
    checked_rows: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Check:
    """One target row: a figure of loopml's, its target and whether it is met."""

    model: str
    title: str
    column: str  # the table column the value goes in
    value: float | None
    text: str
    target: str
    met: bool | None
    cells: dict[str, str] = field(default_factory=dict)  # more columns, shown as they are


# -- setup -----------------------------------------------------------------------------------------


def _sklearn_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("scikit-learn")


def fit_models(folder: Path, kinds: Sequence[str]) -> dict[str, Any]:
    """Fit the models in this interpreter and dump them for the workers; their predictions."""
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    X = data.features()
    found: dict[str, Any] = {}
    for kind in kinds:
        model = data.fit(kind)
        joblib.dump(model, folder / f"{kind}.joblib")
        predictions = model.predict(X)
        found[kind] = {"labels": data.labels(predictions), "digest": data.digest(predictions)}
    return found


def _worker(tool: str, python: Path, spec: dict[str, Any], env: dict[str, str]) -> Any:
    return run_json(
        [str(python), str(WORKERS[tool]), json.dumps(spec)],
        cwd=BENCH_DIR,
        env=env,
        timeout=WORKER_TIMEOUT_S,
    )


def prepare_tool(
    name: str, args: argparse.Namespace, work: Path, fitted: Path, kinds: list[str]
) -> Tool | str:
    """Install (peers), save the models in the tool's format; the Tool, or why it is skipped."""
    sklearn_version = _sklearn_version()
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    common = {"fitted": str(fitted), "kinds": kinds}
    if name == "loopml":
        env = {} if args.no_snapshot else snapshot_loopml(SNAPSHOT_DIR)
        python = Path(sys.executable)
        info = _worker("loopml", python, {"op": "info"}, env)
        if not info.get("serving") and not args.loopml_command:
            return (
                "loopml serve not available: loopml.serving.app is not in "
                f"{'src/loopml' if args.no_snapshot else 'the snapshot of src/loopml'} yet"
            )
        env = {**env, "LOOPML_TRACKING_URI": str(folder / "store")}
        env["LOOPML_CACHE_DIR"] = str(folder / "cache")
        saved = _worker("loopml", python, {"op": "save", **common}, env)
        saved["info"] = info
        return Tool(name, python, env, folder, saved)
    if name == "mlflow":
        python = ensure_venv("mlflow", "mlflow", MLFLOW_VERSION)
        ensure_distribution(python, "scikit-learn", sklearn_version)
        env = dict(MLFLOW_ENV)
        saved = _worker("mlflow", python, {"op": "save", "out": str(folder), **common}, env)
        return Tool(name, python, env, folder, saved)
    python = ensure_peer_venv(name, sklearn_version)
    if name == "bentoml":
        env = {"BENTOML_HOME": str(folder / "home"), "BENTOML_DO_NOT_TRACK": "true"}
        spec = {
            "op": "save",
            "out": str(folder),
            "max_batch_size": MAX_BATCH_SIZE,
            "max_latency_ms": BENTOML_MAX_LATENCY_MS,
            **common,
        }
        saved = _worker("bentoml", python, spec, env)
        return Tool(name, python, env, folder, saved)
    spec = {
        "op": "save",
        "out": str(folder),
        "max_batch_size": MAX_BATCH_SIZE,
        "max_batch_time_s": args.mlserver_batch_time_ms / 1000,
        **common,
    }
    saved = _worker("mlserver", python, spec, {})
    return Tool(name, python, {}, folder, saved)


def pinning(enabled: bool) -> tuple[list[str], list[str], str]:
    """taskset prefixes for the servers and the load generator, and what they do, in words."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = list(range(os.cpu_count() or 1))
    if not enabled:
        return [], [], "not pinned (--no-pin)"
    if len(cpus) < 2:
        return [], [], "not pinned (one CPU)"
    if not shutil.which("taskset"):
        return [], [], "not pinned (no taskset on PATH)"
    load, servers = cpus[-1], cpus[:-1]
    server_list = ",".join(map(str, servers))
    return (
        ["taskset", "-c", server_list],
        ["taskset", "-c", str(load)],
        f"servers (and the in-process run) pinned to CPU {server_list}, "
        f"the load generator to CPU {load} (taskset)",
    )


# -- one server ------------------------------------------------------------------------------------


def loopml_command(override: str | None) -> list[str]:
    """``loopml``: ``--loopml-command`` when given, else the console script beside this
    interpreter, else ``python -m loopml.cli`` (never a version manager's shim, whose start-up
    would count in the cold start)."""
    if override:
        return shlex.split(override)
    script = Path(sys.executable).parent / "loopml"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "loopml.cli"]


def launch_for(variant: Variant, kind: str, tool: Tool, settings: Settings, run: Path) -> Launch:
    """The command that serves ``kind`` as ``variant``, on a free port."""
    port = free_port()
    path = path_for(variant.protocol, kind)
    bin_dir = tool.python.parent
    # the tool's bin folder first on PATH, as in an activated virtualenv: `mlflow models serve`
    # runs `uvicorn` through the shell, and must not find another environment's
    activated = {"PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}
    if variant.tool != "loopml":
        activated["VIRTUAL_ENV"] = str(bin_dir.parent)
    tool = Tool(tool.name, tool.python, {**tool.env, **activated}, tool.folder, tool.saved)
    if variant.tool == "loopml":
        command = [
            *loopml_command(settings.loopml_command),
            "serve",
            tool.saved["models"][kind]["uri"],
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
            "--max-batch-size",
            str(MAX_BATCH_SIZE),
            "--max-queue-rows",
            str(settings.max_queue_rows),
        ]
        if settings.loopml_max_latency_ms is not None:
            command += ["--max-latency-ms", f"{settings.loopml_max_latency_ms:g}"]
        if variant.name == "loopml-bare":
            command += ["--no-prediction-log", "--no-metrics"]
        # a fresh cache per start: the cold start includes fetching the model from the store
        env = {**tool.env, "LOOPML_CACHE_DIR": str(run / "cache")}
        return Launch(command, env, run, port, path, variant.protocol)
    if variant.tool == "mlflow":
        command = [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            tool.saved["models"][kind]["path"],
            "--env-manager",
            "local",
            "-h",
            HOST,
            "-p",
            str(port),
            "-w",
            "1",
        ]
        return Launch(command, dict(tool.env), run, port, path, variant.protocol)
    if variant.tool == "bentoml":
        which = "batched" if variant.name.endswith("batched") else "plain"
        command = [
            str(bin_dir / "bentoml"),
            "serve",
            tool.saved["models"][kind]["services"][which],
            "--host",
            HOST,
            "-p",
            str(port),
            "--working-dir",
            str(tool.folder),
        ]
        return Launch(command, dict(tool.env), tool.folder, port, path, variant.protocol)
    grpc, metrics = free_port(), free_port()
    env = {
        **tool.env,
        "MLSERVER_HOST": HOST,
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(grpc),
        "MLSERVER_METRICS_PORT": str(metrics),
        "MLSERVER_PARALLEL_WORKERS": "1",
    }
    command = [str(bin_dir / "mlserver"), "start", tool.saved["models"][kind]["folder"]]
    return Launch(command, env, run, port, path, variant.protocol, [grpc, metrics])


def check_predictions(launch: Launch, bodies: Sequence[str], expected: Sequence[int]) -> list[str]:
    """POST the first CHECK_ROWS rows one by one; what differs from the fitted model."""
    problems = []
    for row in range(min(CHECK_ROWS, len(bodies))):
        status, payload = post(launch.port, launch.path, bodies[row])
        if status != 200:
            problems.append(f"row {row}: HTTP {status}: {payload[:200]!r}")
            break
        try:
            got = predictions_in(json.loads(payload))
        except json.JSONDecodeError:
            got = None
        if got is None:
            problems.append(f"row {row}: no predictions found in the answer {payload[:200]!r}")
            break
        if got != [expected[row]]:
            problems.append(f"row {row}: predicted {got}, the fitted model {expected[row]}")
    return problems


class Runner:
    """Runs the load generator and the servers with the run's settings."""

    def __init__(self, settings: Settings, work: Path, keep: bool) -> None:
        self.settings = settings
        self.work = work
        self.keep = keep
        self.rows = data.features()

    def load(self, target: Target, connections: int, seconds: float) -> LoadResult:
        scratch = Path(tempfile.mkdtemp(prefix="load-", dir=self.work))
        try:
            if self.settings.generator == "wrk" and self.settings.wrk:
                return run_wrk(
                    self.settings.wrk, target, connections, seconds, self.settings.load_pin, scratch
                )
            return run_asyncio(target, connections, seconds, self.settings.load_pin, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def burst(self, target: Target) -> LoadResult:
        """The asyncio client (it tells refusals apart) with far more connections."""
        scratch = Path(tempfile.mkdtemp(prefix="burst-", dir=self.work))
        try:
            return run_asyncio(
                target,
                self.settings.burst_connections,
                self.settings.burst_s,
                self.settings.load_pin,
                scratch,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def serve(
        self, variant: Variant, kind: str, tool: Tool, repeat: int, expected: Sequence[int]
    ) -> tuple[ServerSample, list[LoadSample]]:
        """Start one server, check it, load it at each concurrency, stop it."""
        run = Path(tempfile.mkdtemp(prefix=f"{kind}-{variant.name}-{repeat}-", dir=self.work))
        launch = launch_for(variant, kind, tool, self.settings, run)
        bodies = tuple(body_for(variant.protocol, kind, row) for row in self.rows)
        target = Target(HOST, launch.port, launch.path, bodies)
        server = ServerProcess(
            f"{variant.name} ({kind})", launch, self.settings.server_pin, run / "server.log"
        )
        sample = ServerSample(kind, variant.name, repeat, None, {})
        loads: list[LoadSample] = []
        label = f"{kind} {variant.name} {repeat}/{self.settings.repeats}"
        try:
            sample.cold_start_s = server.start(bodies[0])
            log(f"{label}: first answer after {sample.cold_start_s:.2f} s")
            sample.problems += check_predictions(launch, bodies, expected)
            sample.checked_rows = min(CHECK_ROWS, len(bodies))
            if variant.name == "loopml":  # else the overhead rows would compare nothing
                status, _ = get(launch.port, "/metrics")
                if status != 200:
                    sample.problems.append(f"GET /metrics answered {status}, not 200")
            for connections in self.settings.concurrency:
                self.load(target, connections, self.settings.warmup_s)
                server.settle()
                result = self.load(target, connections, self.settings.duration_s)
                server.settle()
                loads.append(LoadSample(kind, variant.name, repeat, connections, result.to_dict()))
                log(
                    f"{label} c={connections}: {result.rps:,.1f} req/s, p50 "
                    f"{_ms(result.p50_ms)}, p99 {_ms(result.p99_ms)}, {result.errors} errors"
                    f"{_busy(result)}"
                )
                if not server.alive():
                    raise WorkerError(f"the server died; its log ends:\n{server.log_tail()}")
            sample.memory = server.memory()  # the timed runs only, not the burst below
            if variant.name == "loopml":
                sample.overload = self.overload(server, target, bodies[0], label)
        except (
            WorkerError,
            RuntimeError,
            OSError,
            http.client.HTTPException,
            subprocess.SubprocessError,
        ) as exc:
            sample.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            overall = server.stop()
            if sample.overload is not None:
                sample.overload["peak_rss_process_mb"] = overall.get("peak_rss_process_mb")
                sample.overload["peak_rss_tree_mb"] = overall.get("peak_rss_tree_mb")
            sample.memory = sample.memory or overall
            if not self.keep:
                shutil.rmtree(run, ignore_errors=True)
        for problem in sample.problems:
            log(f"[red]{label}: {problem}[/red]")
        return sample, loads

    def overload(
        self, server: ServerProcess, target: Target, first_body: str, label: str
    ) -> dict[str, Any]:
        result = self.burst(target)
        server.settle()
        begin = time.perf_counter()
        recovered = False
        while time.perf_counter() - begin < 10:
            try:
                if post(target.port, target.path, first_body, timeout=5)[0] == 200:
                    recovered = True
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        found = {**result.to_dict(), "recovered": recovered}
        log(
            f"{label} burst of {result.connections} connections: {result.ok} answered, "
            f"{result.refused} refused (p99 {_ms(result.refused_p99_ms)}), "
            f"{sum(result.socket_errors.values())} socket errors; "
            f"{'answers again' if recovered else 'DOES NOT ANSWER afterwards'}{_busy(result)}"
        )
        return found


# -- the run ---------------------------------------------------------------------------------------


def run_all(
    runner: Runner, tools: dict[str, Tool], fitted: dict[str, Any]
) -> tuple[list[ServerSample], list[LoadSample]]:
    servers: list[ServerSample] = []
    loads: list[LoadSample] = []
    settings = runner.settings
    variants = [v for v in VARIANTS if v.tool in tools]
    for kind in settings.models:
        for repeat in range(1, settings.repeats + 1):
            order = variants if repeat % 2 else variants[::-1]  # drift hits every server
            for variant in order:
                sample, measured = runner.serve(
                    variant, kind, tools[variant.tool], repeat, fitted[kind]["labels"]
                )
                servers.append(sample)
                loads.extend(measured)
    return servers, loads


def inprocess(settings: Settings, fitted_dir: Path) -> dict[str, Any]:
    """model.predict in one process pinned like the servers: the limit for any of them."""
    spec = {
        "op": "inprocess",
        "fitted": str(fitted_dir),
        "kinds": settings.models,
        "seconds": QUICK_DURATION_S / 3 if settings.quick else INPROCESS_S,
    }
    command = [
        *settings.server_pin,
        sys.executable,
        str(WORKERS["loopml"]),
        json.dumps(spec),
    ]
    result: dict[str, Any] = run_json(command, cwd=BENCH_DIR, timeout=WORKER_TIMEOUT_S)
    return result


# -- the report ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def _busy(result: LoadResult) -> str:
    """A warning when the load generator used most of its core: then it, not the server, may
    have set the pace, and its latencies include its own queueing."""
    cpu = result.generator_cpu
    if cpu is None or cpu < BUSY_GENERATOR:
        return ""
    return f" [yellow](the load generator was {cpu:.0%} busy)[/yellow]"


def _rate(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _med(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return median(found) if found else None


@dataclass
class Summary:
    """Medians over the repeats, per (model, variant, concurrency) and per (model, variant)."""

    loads: dict[tuple[str, str, int], dict[str, float | None]]
    servers: dict[tuple[str, str], dict[str, Any]]

    def rps(self, model: str, variant: str, connections: int) -> float | None:
        return self.loads.get((model, variant, connections), {}).get("rps")

    def figure(self, model: str, variant: str, connections: int, key: str) -> float | None:
        return self.loads.get((model, variant, connections), {}).get(key)


def summarise(servers: list[ServerSample], loads: list[LoadSample]) -> Summary:
    by_load: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for sample in loads:
        by_load.setdefault((sample.model, sample.variant, sample.concurrency), []).append(
            sample.result
        )
    load_medians = {
        key: {
            name: _med([r.get(name) for r in results])
            for name in ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "responses")
        }
        for key, results in by_load.items()
    }
    by_server: dict[tuple[str, str], list[ServerSample]] = {}
    for server in servers:
        if server.cold_start_s is not None:  # it answered: its figures mean something
            by_server.setdefault((server.model, server.variant), []).append(server)
    server_medians = {}
    for key, group in by_server.items():
        server_medians[key] = {
            "cold_start_s": _med([s.cold_start_s for s in group]),
            "peak_rss_tree_mb": _med([s.memory.get("peak_rss_tree_mb") for s in group]),
            "peak_rss_process_mb": _med([s.memory.get("peak_rss_process_mb") for s in group]),
            "processes": max((s.memory.get("processes", 0) for s in group), default=0),
            "overloads": [s.overload for s in group if s.overload],
        }
    return Summary(load_medians, server_medians)


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    return mine / theirs if mine is not None and theirs else None


def _ratio_check(
    model: str, title: str, mine: float | None, theirs: float | None, target: float | None
) -> Check:
    ratio = _ratio(mine, theirs)
    met = None if ratio is None or target is None else ratio >= target
    return Check(
        model,
        title,
        "req/s",
        ratio,
        "n/a" if ratio is None else f"{ratio:,.1f}x",
        "" if target is None else f">= {target:g}x",
        met,
    )


# the throughput targets at c=64, loopml / peer, per model: (variant, target or None)
THROUGHPUT_TARGETS: dict[str, list[tuple[str, float | None]]] = {
    "lr": [
        ("mlflow", 40),
        ("bentoml", 10),
        ("bentoml-batched", None),
        ("mlserver-batched", 2),
    ],
    "rf": [
        ("mlflow", 100),
        ("bentoml", None),
        ("bentoml-batched", 5),
        ("mlserver-batched", 2),
    ],
}
INPROCESS_TARGET = {"lr": None, "rf": 0.5}  # loopml at c=64 / in-process rows/s at batch 64


def checks(
    model: str, summary: Summary, limits: dict[str, Any], top: int, burst_connections: int
) -> list[Check]:
    """loopml's targets for ``model``; values None (n/a) where a side is missing."""
    found: list[Check] = []
    mine = summary.rps(model, "loopml", top)
    for peer, target in THROUGHPUT_TARGETS[model]:
        found.append(
            _ratio_check(
                model,
                f"req/s vs {VARIANT[peer].label} (c={top})",
                mine,
                summary.rps(model, peer, top),
                target,
            )
        )
    batch64 = limits.get("64", {}).get("rows_per_s")
    found.append(
        _ratio_check(
            model,
            f"req/s vs in-process rows/s, 64 rows a call (c={top})",
            mine,
            batch64,
            INPROCESS_TARGET[model],
        )
    )
    if found[-1].value is not None:
        found[-1].text = f"{found[-1].value:.0%}"
        if found[-1].target:
            found[-1].target = f">= {INPROCESS_TARGET[model]:.0%}"

    p99 = summary.figure(model, "loopml", top, "p99_ms")
    found.append(
        Check(
            model,
            f"p99 (c={top})",
            "p99",
            p99,
            _ms(p99),
            f"<= {P99_LIMIT_MS:g} ms",
            None if p99 is None else p99 <= P99_LIMIT_MS,
        )
    )
    p50_1 = summary.figure(model, "loopml", 1, "p50_ms")
    p99_1 = summary.figure(model, "loopml", 1, "p99_ms")
    spread = _ratio(p99_1, p50_1)
    found.append(
        Check(
            model,
            "p99 / p50 (c=1)",
            "p99",
            spread,
            "n/a" if spread is None else f"{spread:.1f}x",
            "<= 3x",
            None if spread is None else spread <= 3,
        )
    )
    alone = limits.get("1", {}).get("p50_ms")
    above = None if p99_1 is None or alone is None else p99_1 - alone
    found.append(
        Check(
            model,
            "p99 above in-process predict of 1 row (c=1)",
            "p99",
            above,
            _ms(above),
            "<= 2 ms",
            None if above is None else above <= 2,
        )
    )
    bare = summary.rps(model, "loopml-bare", top)
    overheads = (("loopml", "metrics + prediction log on"), ("loopml-v2", "V2 /infer, both on"))
    for variant, what in overheads:
        check = _ratio_check(
            model,
            f"{what}: req/s vs both off (c={top})",
            summary.rps(model, variant, top),
            bare,
            None,
        )
        check.target = ">= 90%"
        if check.value is not None:
            check.text = f"{check.value:.0%}"
            check.met = check.value >= 0.9
        found.append(check)
    cold_mine = summary.servers.get((model, "loopml"), {}).get("cold_start_s")
    cold_mlflow = summary.servers.get((model, "mlflow"), {}).get("cold_start_s")
    cold = _ratio_check(model, "cold start: MLflow's / loopml's", cold_mlflow, cold_mine, 3)
    cold.column = "cold start"
    found.append(cold)
    rss = summary.servers.get((model, "loopml"), {}).get("peak_rss_process_mb")
    found.append(
        Check(
            model,
            "peak RSS under load, largest process",
            "peak RSS",
            rss,
            "n/a" if rss is None else f"{rss:.0f} MB",
            "<= 200 MB",
            None if rss is None else rss <= 200,
        )
    )
    errors = [
        summary.figure(model, "loopml", c, "errors")
        for (m, v, c) in summary.loads
        if m == model and v == "loopml"
    ]
    known = [e for e in errors if e is not None]
    found.append(
        Check(
            model,
            "errors in the timed runs",
            "errors",
            sum(known) if known else None,
            f"{sum(known):.0f}" if known else "n/a",
            "0",
            (sum(known) == 0) if known else None,
        )
    )
    found += overload_checks(model, summary, burst_connections)
    return found


def overload_checks(model: str, summary: Summary, connections: int) -> list[Check]:
    """Sheds load at once: its refusals (429/503) come within REFUSAL_P99_MS at p99; what it
    accepts is answered within P99_LIMIT_MS at p99 (no unbounded queue); it answers again
    after the burst."""
    overloads = summary.servers.get((model, "loopml"), {}).get("overloads") or []
    refusals = Check(
        model,
        f"overload ({connections} conn.): refusals (429/503), p99",
        "p99",
        None,
        "n/a",
        f"<= {REFUSAL_P99_MS:g} ms",
        None,
    )
    accepted = Check(
        model,
        "overload: accepted requests' p99; answers after",
        "p99",
        None,
        "n/a",
        f"<= {P99_LIMIT_MS:g} ms",
        None,
    )
    if not overloads:
        return [refusals, accepted]
    refused = _med([o.get("refused") for o in overloads]) or 0
    responses = _med([o.get("responses") for o in overloads]) or 0
    refused_p99 = _med([o.get("refused_p99_ms") for o in overloads])
    refusals.cells["errors"] = f"{refused:.0f} of {responses:.0f}"
    if refused and refused_p99 is not None:
        refusals.value, refusals.text = refused_p99, _ms(refused_p99)
        refusals.met = refused_p99 <= REFUSAL_P99_MS
    else:
        refusals.text = "none refused"
    accepted_p99 = _med([o.get("ok_p99_ms") for o in overloads])
    recovered = all(o.get("recovered") for o in overloads)
    accepted.cells["errors"] = "recovered" if recovered else "NO ANSWER after"
    if accepted_p99 is not None:
        accepted.value, accepted.text = accepted_p99, _ms(accepted_p99)
        accepted.met = recovered and accepted_p99 <= P99_LIMIT_MS
    elif not recovered:
        accepted.met = False
    return [refusals, accepted]


HEADER = [
    "server / check",
    "c",
    "req/s",
    "p50",
    "p99",
    "errors",
    "cold start",
    "peak RSS",
    "target",
    "met?",
]
RIGHT = {1, 2, 3, 4, 5, 6, 7}


def table_rows(
    model: str,
    summary: Summary,
    limits: dict[str, Any],
    found: list[Check],
    settings: Settings,
    variants: list[Variant],
) -> tuple[list[list[str]], list[list[str]]]:
    """The measured rows and the target rows of ``model``'s table."""
    rows: list[list[str]] = []
    for variant in variants:
        server = summary.servers.get((model, variant.name), {})
        first = True
        for connections in settings.concurrency:
            figures = summary.loads.get((model, variant.name, connections))
            if figures is None:
                continue
            rss = server.get("peak_rss_tree_mb")
            cold = server.get("cold_start_s")
            processes = server.get("processes", 0)
            rows.append(
                [
                    variant.label if first else "",
                    str(connections),
                    _rate(figures["rps"]),
                    _ms(figures["p50_ms"]),
                    _ms(figures["p99_ms"]),
                    f"{figures['errors']:.0f}" if figures["errors"] is not None else "n/a",
                    (f"{cold:.2f} s" if cold is not None else "n/a") if first else "",
                    (
                        f"{rss:.0f} MB" + (f" ({processes} proc.)" if processes > 1 else "")
                        if first and rss is not None
                        else ""
                    ),
                    "",
                    "",
                ]
            )
            first = False
        if first:  # the server never got to the timed runs
            rows.append([variant.label, "-", "failed", "", "", "", "", "", "", ""])
    for batch in ("1", "64"):
        figures = limits.get(batch)
        if figures:
            rows.append(
                [
                    f"in-process predict, {batch} row{'s' if batch != '1' else ''} a call",
                    "-",
                    _rate(figures["rows_per_s"]) + " rows/s",
                    _ms(figures["p50_ms"]),
                    _ms(figures["p99_ms"]),
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
    targets = [["loopml's targets", *[""] * (len(HEADER) - 1)]]
    for check in found:
        cells = {name: "" for name in HEADER}
        cells.update(check.cells)
        cells["server / check"] = check.title
        cells[check.column] = check.text
        cells["target"] = check.target
        cells["met?"] = (
            ""
            if not check.target
            else "n/a"
            if check.met is None
            else ("yes" if check.met else "NO")
        )
        targets.append([cells[name] for name in HEADER])
    return rows, targets


def render_markdown(rows: list[list[str]]) -> str:
    everything = [HEADER, *rows]
    widths = [max(len(row[i]) for row in everything) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(everything):
        cells = [
            c.rjust(w) if i in RIGHT else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join(
                    ("-" * (w + 1) + ":") if i in RIGHT else "-" * (w + 2)
                    for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(lines)


def print_table(
    title: str, measured: list[list[str]], targets: list[list[str]], markdown: bool
) -> None:
    print(title + "\n")
    try:
        if markdown:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_markdown([*measured, *targets]))
        return
    table = Table()
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="right" if i in RIGHT else "left")
    for row in measured:
        table.add_row(*row)
    table.add_section()
    for row in targets:
        style = "red" if row[-1] == "NO" else None
        table.add_row(*row, style=style)
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 220).print(table)


def notes(
    settings: Settings,
    tools: dict[str, Tool],
    skipped: dict[str, str],
    loads: list[LoadSample],
    servers: list[ServerSample],
) -> list[str]:
    found = [
        f"Load: {settings.generator}"
        + (
            " (one thread, a Lua script POSTs the rows in turn)"
            if settings.generator == "wrk"
            else " (a bounded asyncio HTTP/1.1 keep-alive client, one process)"
        )
        + f", {settings.duration_s:g} s a run after a {settings.warmup_s:g} s warm-up at the "
        f"same concurrency, one keep-alive connection per concurrent client; req/s counts 2xx "
        f"answers only; latencies are over every answer. {settings.pinning}.",
        "Every server runs one worker and gets single-row JSON requests in its own protocol: "
        'loopml POST /predict/{name} {"data": [[30 floats]]} (V2: /v2/models/{name}/infer); '
        'MLflow POST /invocations {"inputs": [[...]]}; BentoML POST /predict '
        '{"input": [[...]]}; MLServer POST /v2/models/{name}/infer, one FP64 tensor [1, 30].',
        f"Batching: loopml --max-batch-size {MAX_BATCH_SIZE} "
        + (
            f"--max-latency-ms {settings.loopml_max_latency_ms:g} "
            if settings.loopml_max_latency_ms is not None
            else "(--max-latency-ms: its default) "
        )
        + f"--max-queue-rows {settings.max_queue_rows}; MLServer max_batch_size "
        f"{MAX_BATCH_SIZE}, max_batch_time {settings.mlserver_batch_time_ms / 1000:g} s; "
        "BentoML batchable=True, "
        f"max_batch_size={MAX_BATCH_SIZE}, max_latency_ms={BENTOML_MAX_LATENCY_MS} (its latency "
        "budget, past which it answers 503; plain BentoML calls predict once per request).",
        "Cold start: from the server command to its first 200 answer to a predict request "
        "(polled every 20 ms); loopml starts with an empty LOOPML_CACHE_DIR each time; the "
        "first start of each tool also reads its files from disk, hence medians. Peak RSS: "
        "the server's whole process tree, sampled every 100 ms from its start to the end of "
        "the timed runs (psutil; the burst is reported apart, in the JSON); the RSS target "
        "takes its largest process.",
        f"Overload: {settings.burst_connections} connections for {settings.burst_s:g} s "
        f"against loopml serve --max-queue-rows {settings.max_queue_rows} (the asyncio client, "
        "which counts each status), then a request must be answered again. The burst is a "
        "closed loop: with N connections, latency is about N / answers per second, so "
        "refusals come within 100 ms at p99 only if the server answers them at N / 0.1 s.",
    ]
    busy = [
        f"{s.model} {s.variant} c={s.concurrency}"
        for s in loads
        if (s.result.get("generator_cpu") or 0) >= BUSY_GENERATOR
    ]
    busy += [
        f"{s.model} {s.variant} burst"
        for s in servers
        if s.overload and (s.overload.get("generator_cpu") or 0) >= BUSY_GENERATOR
    ]
    if busy:
        found.append(
            f"The load generator used over {BUSY_GENERATOR:.0%} of its core in: "
            + ", ".join(busy)
            + ". There it may have set the pace, and its latencies include its own queueing."
        )
    for name, tool in tools.items():
        versions = {k: v for k, v in tool.saved.items() if isinstance(v, str)}
        found.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for name, reason in skipped.items():
        found.append(f"{name} skipped: {reason}")
    return found


# -- main ------------------------------------------------------------------------------------------


def _comma_list(
    parser: argparse.ArgumentParser, values: list[str] | None, allowed: Sequence[str], flag: str
) -> list[str]:
    if not values:
        return list(allowed)
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        parser.error(f"{flag}: unknown {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [v for v in allowed if v in chosen]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: c={','.join(map(str, QUICK_CONCURRENCY))}, {QUICK_DURATION_S:g} s "
        "runs, 1 repeat unless --repeats",
    )
    parser.add_argument("--duration", type=float, help=f"seconds per timed run ({DURATION_S:g})")
    parser.add_argument("--warmup", type=float, help=f"seconds of warm-up per run ({WARMUP_S:g})")
    parser.add_argument("--repeats", "--repeat", type=int, help=f"medians of N ({REPEATS})")
    parser.add_argument(
        "--only", action="append", help=f"servers, a comma list of {', '.join(TOOLS)}"
    )
    parser.add_argument(
        "--models", action="append", help=f"models, a comma list of {', '.join(data.MODEL_KINDS)}"
    )
    parser.add_argument(
        "--concurrency", help="comma list of concurrencies (default 1,16,64; --quick 1,64)"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "asyncio"),
        default="auto",
        help="load generator: wrk when it is there (installed if possible), else asyncio",
    )
    parser.add_argument(
        "--no-install-wrk", action="store_true", help="do not apt-get install a missing wrk"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--burst-connections",
        type=int,
        default=BURST_CONNECTIONS,
        help=f"connections of the overload burst ({BURST_CONNECTIONS})",
    )
    parser.add_argument(
        "--max-queue-rows",
        type=int,
        default=MAX_QUEUE_ROWS,
        help=f"loopml serve --max-queue-rows ({MAX_QUEUE_ROWS}; the timed runs never queue more "
        "than their concurrency, the burst far more)",
    )
    parser.add_argument(
        "--loopml-max-latency-ms",
        type=float,
        help="loopml serve --max-latency-ms (default: not given, loopml's own default)",
    )
    parser.add_argument(
        "--mlserver-batch-time-ms",
        type=float,
        default=MLSERVER_BATCH_TIME_MS,
        help=f"MLServer's max_batch_time ({MLSERVER_BATCH_TIME_MS:g} ms)",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run loopml from the working tree instead of a copy of src/loopml taken at start",
    )
    parser.add_argument(
        "--loopml-command",
        help="the command that stands for `loopml` (e.g. another build's console script); "
        "the loopml rows then run even without loopml.serving in this tree",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--markdown", action="store_true", help="markdown tables, not rich")
    parser.add_argument(
        "--json",
        type=Path,
        default=WORK_DIR / "serving.json",
        help="where to write every figure (default benchmarks/.work/serving.json)",
    )
    args = parser.parse_args(argv)
    args.only = _comma_list(parser, args.only, TOOLS, "--only")
    args.models = _comma_list(parser, args.models, data.MODEL_KINDS, "--models")
    if args.concurrency:
        try:
            args.concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
        except ValueError:
            parser.error("--concurrency: a comma list of integers")
    else:
        args.concurrency = list(QUICK_CONCURRENCY if args.quick else CONCURRENCY)
    if any(c < 1 for c in args.concurrency):
        parser.error("--concurrency: at least 1")
    args.duration = args.duration or (QUICK_DURATION_S if args.quick else DURATION_S)
    args.warmup = (
        args.warmup if args.warmup is not None else (QUICK_WARMUP_S if args.quick else WARMUP_S)
    )
    args.repeats = args.repeats or (1 if args.quick else REPEATS)
    if args.repeats < 1 or args.duration < 1:
        parser.error("--repeats and --duration must be at least 1")
    return args


def choose_generator(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.generator == "asyncio":
        return "asyncio", None
    wrk = find_wrk(not args.no_install_wrk, log)
    if wrk is None and args.generator == "wrk":
        raise WorkerError("--generator wrk: wrk is not on PATH and could not be installed")
    return ("wrk", wrk) if wrk else ("asyncio", None)


def setup(
    args: argparse.Namespace, work: Path
) -> tuple[Settings, dict[str, Tool], dict[str, str], dict[str, Any], list[str]]:
    generator, wrk = choose_generator(args)
    server_pin, load_pin, pinned = pinning(not args.no_pin)
    settings = Settings(
        models=args.models,
        tools=args.only,
        concurrency=args.concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        repeats=args.repeats,
        burst_connections=args.burst_connections,
        burst_s=QUICK_BURST_S if args.quick else BURST_S,
        max_queue_rows=args.max_queue_rows,
        loopml_max_latency_ms=args.loopml_max_latency_ms,
        mlserver_batch_time_ms=args.mlserver_batch_time_ms,
        generator=generator,
        wrk=wrk,
        server_pin=server_pin,
        load_pin=load_pin,
        loopml_command=args.loopml_command,
        pinning=pinned,
        quick=args.quick,
    )
    log(f"load generator: {generator}{f' ({wrk})' if wrk else ''}; {pinned}")
    fitted_dir = work / "fitted"
    fitted = fit_models(fitted_dir, args.models)
    tools: dict[str, Tool] = {}
    skipped: dict[str, str] = {}
    problems: list[str] = []
    for name in args.only:
        log(f"preparing {name}")
        try:
            ready = prepare_tool(name, args, work, fitted_dir, args.models)
        except (WorkerError, subprocess.CalledProcessError, KeyError) as exc:
            message = f"cannot set up {name}: {exc}"
            log(f"[red]{message}[/red]")
            skipped[name] = message
            problems.append(message)
            continue
        if isinstance(ready, str):
            log(f"[yellow]{name} skipped: {ready}[/yellow]")
            skipped[name] = ready
            continue
        wrong = [
            kind
            for kind in args.models
            if ready.saved["models"][kind]["digest"] != fitted[kind]["digest"]
        ]
        if wrong:
            problems.append(f"{name}: the saved {', '.join(wrong)} predict differently")
        if ready.saved.get("sklearn") != _sklearn_version():
            problems.append(
                f"{name} runs scikit-learn {ready.saved.get('sklearn')}, this interpreter "
                f"{_sklearn_version()}"
            )
        tools[name] = ready
    return settings, tools, skipped, fitted, problems


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "loopml_git": git_state(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        try:
            settings, tools, skipped, fitted, problems = setup(args, work)
        except WorkerError as exc:
            log(f"[red]setup failed:[/red] {exc}")
            return 2
        if not tools:
            log("[red]cannot run:[/red] no server could be set up")
            for name, reason in skipped.items():
                log(f"  {name}: {reason}")
            return 2
        limits = inprocess(settings, work / "fitted")
        for kind in settings.models:
            shown = limits["models"][kind]
            log(
                f"in-process {kind}: {shown['1']['rows_per_s']:,.0f} rows/s at 1 row a call, "
                f"{shown['64']['rows_per_s']:,.0f} rows/s at 64"
            )
        runner = Runner(settings, work, args.keep)
        servers, loads = run_all(runner, tools, fitted)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for server in servers:
        where = f"{server.model} {server.variant} {server.repeat}"
        problems += [f"{where}: {p}" for p in server.problems]

    summary = summarise(servers, loads)
    info = machine_info()
    variants = [v for v in VARIANTS if v.tool in tools]
    top = TOP if TOP in settings.concurrency else max(settings.concurrency)
    all_checks: list[Check] = []
    git = info["loopml_git"]
    for kind in settings.models:
        found = checks(kind, summary, limits["models"][kind], top, settings.burst_connections)
        all_checks += found
        measured, targets = table_rows(
            kind, summary, limits["models"][kind], found, settings, variants
        )
        title = (
            f"Serving benchmark, {data.MODEL_TITLES[kind]}: "
            f"{'SMOKE RUN (--quick), not for comparison; ' if settings.quick else ''}"
            f"median of {settings.repeats}, {settings.duration_s:g} s per run, "
            f"c = {', '.join(map(str, settings.concurrency))}\n"
            f"loopml commit {git['commit']}{', src/ modified' if git['src_dirty'] else ''}; "
            f"{info['cpu']}, {info['cores']} CPUs, {info['ram_gib']} GiB RAM, "
            f"Python {info['python']}"
        )
        print()
        print_table(title, measured, targets, args.markdown)
    print("\nNotes:")
    for note in notes(settings, tools, skipped, loads, servers):
        print(f"- {note}")
    for problem in problems:
        print(f"- PROBLEM: {problem}")
    report = {
        "benchmark": "serving",
        "settings": asdict(settings),
        "seconds": time.perf_counter() - started,
        "machine": info,
        "tools": {name: tool.saved for name, tool in tools.items()},
        "skipped": skipped,
        "inprocess": limits,
        "summary": {
            "loads": [
                {"model": m, "variant": v, "concurrency": c, **figures}
                for (m, v, c), figures in summary.loads.items()
            ],
            "servers": [
                {"model": m, "variant": v, **figures} for (m, v), figures in summary.servers.items()
            ],
        },
        "checks": [asdict(c) for c in all_checks],
        "problems": problems,
        "servers": [asdict(s) for s in servers],
        "loads": [asdict(s) for s in loads],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log(f"figures written to {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
