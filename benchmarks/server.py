"""Server benchmark: ``loopml server`` vs ``mlflow server``, both on SQLite + a local artifact
folder on 127.0.0.1, measured through their HTTP clients in one run.

    python3 benchmarks/server.py                       # full sizes, median of 3 repeats
    python3 benchmarks/server.py --quick --repeats 1   # smoke run with small sizes
    python3 benchmarks/server.py --only loopml         # one side; ratios are n/a
    python3 benchmarks/server.py --workloads fluent,artifact --markdown --json out.json

Each repeat starts each server as a subprocess on a free port with a fresh store in a fresh
temporary folder: loopml with ``python -m uvicorn loopml.server.factory:app_from_env --factory
--workers 1`` (what ``loopml server`` runs) and ``LOOPML_SERVER_OPTIONS`` naming the store
folder (SQLite + blobs beside it); MLflow with ``mlflow server --backend-store-uri sqlite:///...
--artifacts-destination <folder> --workers 1`` (artifacts proxied, MLflow 3's default). The
clock starts only after ``/health`` answers. Every workload then runs against that server in a
client process of its own: loopml's under this interpreter from a snapshot of src/loopml
(``_server_loopml_worker.py``), MLflow's in ``benchmarks/.venvs/mlflow``
(``_server_mlflow_worker.py``), the virtualenv benchmarks/tracking.py uses. Imports, the
server's start and the data's preparation are not timed. The sides alternate their order
across repeats; the table shows medians.

Correctness: every metric workload reads back what the server stored and counts lost and
duplicated points; the artifact is compared by SHA-256 after the round trip. During the
artifact transfers this process samples the server's RSS (its whole process tree, with psutil)
every 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    WORK_DIR,
    WorkerError,
    cpu_model,
    ensure_venv,
    git_state,
    log,
    median,
    ram_gib,
    run_json,
    snapshot_loopml,
)

from tracking import MLFLOW_ENV, MLFLOW_VERSION

SIDES = ("loopml", "mlflow")
WORKLOAD_NAMES = ("fluent", "batch", "history", "concurrent", "concurrent_fluent", "artifact")
SNAPSHOT_DIR = WORK_DIR / "server" / "snapshot"
WORKERS = {
    "loopml": BENCH_DIR / "_server_loopml_worker.py",
    "mlflow": BENCH_DIR / "_server_mlflow_worker.py",
}
WORKER_TIMEOUT_S = 900
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
SETTLE_TIMEOUT_S = 60
RSS_INTERVAL_S = 0.05
MB = 1_000_000

# worker parameters per side, full and --quick; the artifact's size is in MB (10^6 bytes)
SIZES: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "full": {
        "loopml": {
            "fluent": {"points": 10_000},
            "batch": {"points": 100_000, "batch_size": 1000},
            "history": {"points": 20_000, "reads": 5},
            "concurrent": {"procs": 8, "points": 5_000},
            "artifact": {"mb": 200},
        },
        "mlflow": {
            "fluent": {"points": 500},
            "batch": {"points": 100_000, "batch_size": 1000},
            "history": {"points": 20_000, "reads": 5},
            "concurrent": {"procs": 8, "points": 5_000, "batch_size": 1000},
            "concurrent_fluent": {"procs": 8, "points": 100, "mode": "fluent"},
            "artifact": {"mb": 200},
        },
    },
    "quick": {
        "loopml": {
            "fluent": {"points": 1_000},
            "batch": {"points": 10_000, "batch_size": 1000},
            "history": {"points": 2_000, "reads": 3},
            "concurrent": {"procs": 2, "points": 500},
            "artifact": {"mb": 20},
        },
        "mlflow": {
            "fluent": {"points": 50},
            "batch": {"points": 2_000, "batch_size": 1000},
            "history": {"points": 2_000, "reads": 3},
            "concurrent": {"procs": 2, "points": 500, "batch_size": 1000},
            "concurrent_fluent": {"procs": 2, "points": 20, "mode": "fluent"},
            "artifact": {"mb": 20},
        },
    },
}


@dataclass(frozen=True)
class Metric:
    """One row of the table: a figure taken from each repeat's results."""

    name: str
    title: str
    unit: str  # "points/s", "s" or "MB"
    higher_is_better: bool
    target_ratio: float | None = None  # loopml vs MLflow, at least
    loopml_limit: float | None = None  # loopml's median must stay below this (in ``unit``)
    must_be_clean: bool = False  # and no errors, lost or duplicated points on loopml's side
    worst_case: bool = False  # the limit holds for every repeat, not just the median

    def target_text(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f">={self.target_ratio:g}x")
        if self.loopml_limit is not None:
            every = " every repeat" if self.worst_case else ""
            parts.append(f"loopml <{self.loopml_limit:g} {self.unit}{every}")
        if self.must_be_clean:
            parts.append("0 errors/lost/dup")
        return ", ".join(parts)


METRICS = [
    Metric("fluent", "fluent log_metric until durable", "points/s", True, 500),
    Metric("batch", "log_batch, 1,000 points a call", "points/s", True, 20),
    Metric("history", "get_metric_history", "s", False, 20),
    Metric("concurrent", "concurrent clients", "points/s", True, 50, must_be_clean=True),
    Metric("concurrent_fluent", "  the same vs MLflow fluent log_metric", "points/s", True),
    Metric("upload", "artifact upload", "s", False),
    Metric("download", "artifact download", "s", False),
    Metric(
        "rss",
        "server peak RSS above idle (transfer)",
        "MB",
        False,
        loopml_limit=100,
        worst_case=True,
    ),
    Metric("rss_anon", "  the same, anonymous memory only", "MB", False),
    Metric("start", "server start until /health (not timed above)", "s", False),
    Metric("settle", "then until its CPU goes quiet (not timed above)", "s", False),
]
WORKLOAD_OF = {
    "fluent": "fluent",
    "batch": "batch",
    "history": "history",
    "concurrent": "concurrent",
    "concurrent_fluent": "concurrent_fluent",
    "upload": "artifact",
    "download": "artifact",
    "rss": "artifact",
    "rss_anon": "artifact",
    "start": None,
    "settle": None,
}


@dataclass(frozen=True)
class Side:
    name: str
    python: Path
    env: dict[str, str]  # for the server and the client processes


@dataclass
class Sample:
    side: str
    workload: str
    repeat: int
    figures: dict[str, float]  # metric -> value
    result: dict[str, Any]


@dataclass
class Row:
    metric: str
    title: str
    unit: str
    medians: dict[str, float]
    values: dict[str, list[float]]
    ratio: float | None
    target: str
    met: bool | None


# -- the servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _loopml_options(store: Path) -> str:
    try:
        from loopml.server.factory import encode_options
    except ImportError:  # the same JSON, should this interpreter lack the server's extras
        return json.dumps({"backend_store": str(store), "artifacts": None})
    return encode_options(backend_store=str(store), artifacts=None)


class Server:
    """One server process (and its children) on a fresh store in ``folder``."""

    def __init__(self, side: Side, folder: Path) -> None:
        self.side = side
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.pids: set[int] = set()
        self.start_s = 0.0
        self.settle_s = 0.0

    def command(self) -> tuple[list[str], dict[str, str]]:
        port = str(self.port)
        if self.side.name == "loopml":
            command = [
                str(self.side.python),
                "-m",
                "uvicorn",
                "loopml.server.factory:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--workers",
                "1",
            ]
            return command, {"LOOPML_SERVER_OPTIONS": _loopml_options(self.folder / "store")}
        mlflow = self.side.python.parent / "mlflow"
        command = [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--workers",
            "1",
        ]
        return command, {}

    def start(self) -> None:
        command, extra = self.command()
        env = {**os.environ, **self.side.env, **extra}
        begin = time.perf_counter()
        with open(self.log_path, "wb") as sink:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        deadline = begin + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise WorkerError(
                    f"the {self.side.name} server exited with {self.process.returncode} before "
                    f"answering /health; its log ends:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.perf_counter() > deadline:
                raise WorkerError(
                    f"the {self.side.name} server did not answer /health within "
                    f"{READY_TIMEOUT_S}s; its log ends:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        self.start_s = time.perf_counter() - begin
        self.settle_s = self.settle()
        self.pids = {p.pid for p in self.processes()}

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's process tree."""
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except Exception:  # psutil.NoSuchProcess: it ended meanwhile
                continue
        return total

    def settle(self) -> float:
        """Wait until the server's process tree goes quiet after /health (under 10% of one
        core over a second, at most ``SETTLE_TIMEOUT_S``); the seconds waited.

        MLflow answers /health while its job runner is still starting consumer processes,
        which on a small machine take the CPU from the first timed requests.
        """
        begin = time.perf_counter()
        if not self.processes():
            return 0.0
        before = self.cpu_seconds()
        while time.perf_counter() - begin < SETTLE_TIMEOUT_S:
            time.sleep(1.0)
            now = self.cpu_seconds()
            if now - before < 0.1:
                break
            before = now
        return time.perf_counter() - begin

    def processes(self) -> list[Any]:
        """The server's process tree (psutil), or [] without psutil."""
        try:
            import psutil
        except ImportError:
            return []
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after a grace period; then any process of its
        tree that left the group (MLflow's job consumers outlive a killed parent)."""
        if self.process is None:
            return
        self.pids |= {p.pid for p in self.processes()}
        group = self.process.pid
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 10)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap(self.pids - {self.process.pid})
        self.process = None


def _reap(pids: set[int]) -> None:
    """Terminate, then kill, whichever of ``pids`` (a stopped server's own) still run."""
    try:
        import psutil
    except ImportError:
        return
    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    _, still = psutil.wait_procs(alive, timeout=10)
    for proc in still:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


class RssSampler:
    """The RSS of a server's process tree every ``RSS_INTERVAL_S``, stamped with ``time.time``
    so that the client's wall-clock marks find the samples of each transfer.

    Each sample also keeps the anonymous part (RSS minus psutil's ``shared``, the resident
    file-backed pages, on Linux): a memory-mapped file counts in RSS, though the kernel can
    drop those pages at will, while anonymous memory is what the process allocated.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.samples: list[tuple[float, int, int | None]] = []  # (time, rss, anonymous)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            rss, anonymous = 0, 0
            known = True
            for proc in self.server.processes():
                try:
                    memory = proc.memory_info()
                except psutil.NoSuchProcess:
                    continue
                rss += memory.rss
                shared = getattr(memory, "shared", None)
                if shared is None:
                    known = False
                else:
                    anonymous += memory.rss - shared
            self.samples.append((time.time(), rss, anonymous if known else None))
            self._stop.wait(RSS_INTERVAL_S)

    def between(self, start: float, end: float, anonymous: bool = False) -> list[int]:
        found = []
        for t, rss, anon in self.samples:
            value = anon if anonymous else rss
            if start <= t <= end and value is not None:
                found.append(value)
        return found


def rss_figures(sampler: RssSampler, marks: dict[str, float]) -> dict[str, Any]:
    """Idle RSS (median of the samples in the 0.8 s before the upload) and the peaks of each
    transfer above it, in MB; the same for the anonymous part (``anon_`` keys)."""
    found: dict[str, Any] = {"rss_samples": len(sampler.samples)}
    for prefix, anonymous in (("", False), ("anon_", True)):
        idle = sampler.between(marks["upload_start"] - 0.8, marks["upload_start"], anonymous)
        upload = sampler.between(
            marks["upload_start"], marks["upload_end"] + RSS_INTERVAL_S, anonymous
        )
        download = sampler.between(
            marks["download_start"], marks["download_end"] + RSS_INTERVAL_S, anonymous
        )
        if not idle or not upload or not download:
            continue
        base = median([float(v) for v in idle])
        found[f"{prefix}idle_rss_mb"] = base / MB
        found[f"{prefix}upload_peak_mb"] = (max(upload) - base) / MB
        found[f"{prefix}download_peak_mb"] = (max(download) - base) / MB
        found[f"{prefix}peak_above_idle_mb"] = max(
            found[f"{prefix}upload_peak_mb"], found[f"{prefix}download_peak_mb"]
        )
        if not prefix:
            found["samples_in_transfers"] = len(upload) + len(download)
    return found


# -- running the workloads ----------------------------------------------------------------------


def make_blob(folder: Path, mb: int) -> tuple[Path, str]:
    """A file of ``mb`` MB of random bytes and its SHA-256 (random: no compression helps)."""
    path = folder / f"artifact-{mb}MB.bin"
    digest = hashlib.sha256()
    left = mb * MB
    with open(path, "wb") as handle:
        while left:
            chunk = os.urandom(min(left, 8 * 1024 * 1024))
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def client_env(side: Side, server: Server, folder: Path) -> dict[str, str]:
    if side.name == "loopml":
        return {
            **side.env,
            "LOOPML_TRACKING_URI": server.url,
            "LOOPML_CACHE_DIR": str(folder / "cache"),
        }
    return {**side.env, "MLFLOW_TRACKING_URI": server.url}


def call_worker(
    side: Side, workload: str, params: dict[str, Any], folder: Path, env: dict[str, str]
) -> dict[str, Any]:
    name = "concurrent" if workload == "concurrent_fluent" else workload  # mode in params
    spec = {"workload": name, "dir": str(folder), "params": params}
    result: dict[str, Any] = run_json(
        [str(side.python), str(WORKERS[side.name]), json.dumps(spec)],
        cwd=folder,
        env=env,
        timeout=WORKER_TIMEOUT_S,
    )
    return result


def figures_of(side: str, workload: str, result: dict[str, Any]) -> dict[str, float]:
    if workload == "concurrent" and side == "loopml":  # also the loopml side of the next row
        return {"concurrent": float(result["value"]), "concurrent_fluent": float(result["value"])}
    if workload != "artifact":
        return {workload: float(result["value"])}
    extra = result["extra"]
    found = {"upload": float(extra["upload_s"]), "download": float(extra["download_s"])}
    if "peak_above_idle_mb" in extra:
        found["rss"] = float(extra["peak_above_idle_mb"])
    if "anon_peak_above_idle_mb" in extra:
        found["rss_anon"] = float(extra["anon_peak_above_idle_mb"])
    return found


def check(workload: str, result: dict[str, Any]) -> list[str]:
    """What went wrong in one measurement: points lost, duplicated, errors, a bad checksum."""
    found = []
    if workload == "artifact":
        if not result["extra"].get("checksum_ok"):
            found.append("the downloaded artifact's SHA-256 differs from the uploaded file's")
        if result["stored"] != result["count"]:
            found.append(f"downloaded {result['stored']:,} bytes of {result['count']:,}")
        return found
    if result.get("stored") != result.get("count"):
        found.append(f"the server holds {result.get('stored'):,} points of {result['count']:,}")
    if result.get("lost"):
        found.append(f"{result['lost']:,} points lost")
    if result.get("duplicated"):
        found.append(f"{result['duplicated']:,} points duplicated")
    if result.get("errors"):
        samples = result.get("extra", {}).get("error_samples", [])
        found.append(f"{result['errors']:,} errors, e.g. {samples[:1]}")
    return found


def run_side(
    side: Side,
    repeat: int,
    repeats: int,
    sizes: dict[str, dict[str, Any]],
    workloads: Sequence[str],
    blob: tuple[Path, str] | None,
    keep: bool,
) -> tuple[list[Sample], list[str]]:
    """One repeat of one side: a fresh server, every workload against it, then stop it."""
    samples: list[Sample] = []
    problems: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix=f"bench-server-{side.name}-"))
    server = Server(side, folder)
    label = f"{side.name} {repeat}/{repeats}"
    try:
        try:
            server.start()
        except WorkerError as exc:
            log(f"[red]{label}: {exc}[/red]")
            return samples, [f"{label}: {exc}"]
        log(
            f"{label}: server on {server.url} answered /health after {server.start_s:.1f}s, "
            f"quiet {server.settle_s:.1f}s later"
        )
        figures = {"start": server.start_s, "settle": server.settle_s}
        samples.append(Sample(side.name, "start", repeat, figures, {}))
        warm = folder / "client-warmup"
        warm.mkdir()
        try:  # the server's first requests import and set up what it lazily loads
            call_worker(side, "warmup", {}, warm, client_env(side, server, warm))
        except WorkerError as exc:
            log(f"[red]{label}: the warm-up failed: {exc}[/red]")
            return samples, [f"{label} warm-up: {exc}"]
        for workload in workloads:
            if workload not in sizes:  # a reference workload of the other side only
                continue
            params = dict(sizes[workload])
            work = folder / f"client-{workload}"
            work.mkdir()
            env = client_env(side, server, work)
            log(f"{label} {workload} {params}")
            try:
                if workload == "artifact":
                    assert blob is not None
                    params = {"source": str(blob[0]), "sha256": blob[1]}
                    with RssSampler(server) as sampler:
                        result = call_worker(side, workload, params, work, env)
                    result["extra"].update(rss_figures(sampler, result["extra"]["marks"]))
                else:
                    result = call_worker(side, workload, params, work, env)
            except (WorkerError, KeyError, ValueError) as exc:
                message = f"{label} {workload}: {type(exc).__name__}: {exc}"
                if server.process is not None and server.process.poll() is not None:
                    message += f"\nthe server died; its log ends:\n{server.log_tail()}"
                log(f"[red]{message}[/red]")
                problems.append(message)
                continue
            for problem in check(workload, result):
                problems.append(f"{label} {workload}: {problem}")
                log(f"[red]{label} {workload}: {problem}[/red]")
            figures = figures_of(side.name, workload, result)
            samples.append(Sample(side.name, workload, repeat, figures, result))
            log(f"{label} {workload} -> " + ", ".join(_fmt(v, k) for k, v in figures.items()))
    finally:
        server.stop()
        if keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return samples, problems


def run_all(
    sides: list[Side], args: argparse.Namespace, blob: tuple[Path, str] | None
) -> tuple[list[Sample], list[str]]:
    samples: list[Sample] = []
    problems: list[str] = []
    scale = "quick" if args.quick else "full"
    for repeat in range(1, args.repeats + 1):
        order = sides if repeat % 2 else sides[::-1]  # alternate: drift hits both sides
        for side in order:
            got, bad = run_side(
                side,
                repeat,
                args.repeats,
                SIZES[scale][side.name],
                args.workloads,
                blob,
                args.keep,
            )
            samples += got
            problems += bad
    return samples, problems


# -- the summary ----------------------------------------------------------------------------------


def _unclean(samples: list[Sample], side: str, workload: str) -> bool:
    for s in samples:
        if s.side == side and s.workload == workload and check(workload, s.result):
            return True
    return False


def summarise(samples: list[Sample], sides: Sequence[str], problems: list[str]) -> list[Row]:
    rows = []
    for metric in METRICS:
        values = {
            side: [
                s.figures[metric.name]
                for s in samples
                if s.side == side and metric.name in s.figures
            ]
            for side in sides
        }
        values = {side: v for side, v in values.items() if v}
        if not values:
            continue
        medians = {side: median(v) for side, v in values.items()}
        mine, theirs = medians.get("loopml"), medians.get("mlflow")
        ratio = None
        if mine and theirs:
            ratio = mine / theirs if metric.higher_is_better else theirs / mine
        checks: list[bool] = []
        if metric.target_ratio is not None and ratio is not None:
            checks.append(ratio >= metric.target_ratio)
        if metric.loopml_limit is not None and mine is not None:
            measured = max(values["loopml"]) if metric.worst_case else mine
            checks.append(measured < metric.loopml_limit)
        workload = WORKLOAD_OF[metric.name]
        if checks and workload is not None and "loopml" in medians:
            # a target counts as met only with every repeat correct (counts, checksum)
            checks.append(not _unclean(samples, "loopml", workload))
            failed_repeats = [p for p in problems if p.startswith("loopml") and workload in p]
            checks.append(not failed_repeats)
        rows.append(
            Row(
                metric.name,
                metric.title,
                metric.unit,
                medians,
                values,
                ratio,
                metric.target_text(),
                all(checks) if checks else None,
            )
        )
    return rows


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("s", "history", "upload", "download", "start", "settle"):
        if value < 0.01:
            return f"{value * 1000:.2f} ms"
        if value < 1:
            return f"{value * 1000:.0f} ms"
        return f"{value:.2f} s"
    if unit in ("MB", "rss", "rss_anon"):
        return f"{value:,.1f} MB"
    return f"{value:,.0f} points/s" if value >= 100 else f"{value:,.1f} points/s"


def _size_text(metric: str, sizes: dict[str, dict[str, Any]]) -> str:
    workload = WORKLOAD_OF[metric]
    if workload is None:
        return "-"
    p = sizes.get(workload) or sizes["concurrent"]  # loopml's side of concurrent_fluent
    texts: dict[str, Callable[[], str]] = {
        "fluent": lambda: f"{p['points']:,} calls",
        "batch": lambda: f"{p['points']:,} pts",
        "history": lambda: f"{p['points']:,} pts",
        "concurrent": lambda: f"{p['procs']}x{p['points']:,} pts",
        "concurrent_fluent": lambda: f"{p['procs']}x{p['points']:,} pts",
        "artifact": lambda: f"{p['mb']} MB",
    }
    return texts[workload]()


HEADER = ["workload", "loopml", "MLflow", "ratio", "target", "met?", "sizes (loopml / MLflow)"]
RIGHT = {1, 2, 3}


def table_rows(rows: list[Row], scale: str, sides: Sequence[str]) -> list[list[str]]:
    out = []
    for r in rows:
        sizes = " / ".join(
            _size_text(r.metric, SIZES[scale][side]) if side in sides else "-" for side in SIDES
        )
        cells = {}
        for side in SIDES:
            cells[side] = _fmt(r.medians.get(side), r.unit)
            if r.unit == "MB" and len(r.values.get(side, [])) > 1:  # a peak: show the worst
                cells[side] += f" (max {max(r.values[side]):,.1f})"
        out.append(
            [
                r.title,
                cells["loopml"],
                cells["mlflow"],
                "n/a" if r.ratio is None else f"{r.ratio:,.1f}x",
                r.target,
                "" if not r.target else "n/a" if r.met is None else "yes" if r.met else "NO",
                sizes,
            ]
        )
    return out


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


def print_table(rows: list[list[str]], title: str, markdown: bool) -> None:
    print(title + "\n")
    try:
        if markdown:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_markdown(rows))
        return
    table = Table()
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="right" if i in RIGHT else "left")
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200).print(table)


def notes(samples: list[Sample], sides: Sequence[str]) -> list[str]:
    found = [
        "Ratios: loopml / MLflow for rates, MLflow / loopml for times and memory. Medians "
        "over repeats; "
        "each repeat starts a fresh server per side (fresh SQLite store and artifact folder) "
        "and runs every workload against it in client processes of their own.",
        "fluent: the clock runs from start_run to the end of the run plus loopml.flush(), so "
        "every point is durable on the server when it stops (loopml buffers points and sends "
        "them in batches; every mlflow.log_metric is a synchronous request, so MLflow logs "
        "fewer points; its per-call cost is flat, so the rates compare).",
        "batch: Client.log_batch / MlflowClient.log_batch, Metric objects built before the "
        "clock. history: median of the reads after one untimed read.",
        "concurrent: each tool's fastest normal path — loopml: fluent log_metric in a run, "
        "then end of run + flush (buffered, one request per flush); MLflow: create_run, "
        "MlflowClient.log_batch of 1,000 points, set_terminated. Rate = points stored / wall "
        "time from the start signal until the last client is done (clients import and reach "
        "the server before the signal). Every run's history is read back: lost = missing "
        "steps, duplicated = points beyond one per step.",
        "concurrent vs MLflow fluent (no target, for reference): the same loopml figure "
        "against MLflow clients that each call mlflow.log_metric per point inside "
        "start_run (fewer points: each call is a synchronous request).",
        "artifact: loopml.log_artifact / mlflow.log_artifact inside a run, then "
        "Client.download_artifacts / MlflowClient.download_artifacts; a random file, SHA-256 "
        "compared after the round trip. A 1 KB file goes up and down first, untimed. RSS: the "
        "sum over the server's process tree (psutil, every 50 ms; MLflow's includes its "
        "CLI parent and job-runner processes, which stay idle), peak during each transfer "
        "minus the median of the 0.8 s before the upload. 'anonymous' is RSS minus the "
        "resident file-backed pages (psutil's shared): memory-mapped files count in RSS but "
        "are page cache the kernel can drop. A peak shorter than 50 ms can fall between "
        "samples.",
    ]
    for side in sides:
        extra = [
            s.result.get("extra", {})
            for s in samples
            if s.side == side and s.workload == "artifact"
        ]
        peaks = [
            f"up {e['upload_peak_mb']:.1f} / down {e['download_peak_mb']:.1f} MB (idle "
            f"{e['idle_rss_mb']:.0f} MB)"
            + (
                f", anonymous up {e['anon_upload_peak_mb']:.1f} / down "
                f"{e['anon_download_peak_mb']:.1f} MB"
                if "anon_download_peak_mb" in e
                else ""
            )
            + f", {e.get('samples_in_transfers', 0)} samples in the transfers"
            for e in extra
            if "upload_peak_mb" in e and "download_peak_mb" in e
        ]
        if peaks:
            found.append(f"{side} server RSS above idle, per repeat: " + "; ".join(peaks))
        checksums = [e.get("checksum_ok") for e in extra]
        if checksums:
            good = sum(1 for ok in checksums if ok)
            found.append(f"{side} artifact SHA-256 verified in {good} of {len(checksums)} repeats")
        for workload in ("concurrent", "concurrent_fluent"):
            runs = [s.result for s in samples if s.side == side and s.workload == workload]
            if runs:
                found.append(
                    f"{side} {workload}, per repeat: "
                    + "; ".join(
                        f"{r['stored']:,}/{r['count']:,} stored, {r.get('lost', 0)} lost, "
                        f"{r.get('duplicated', 0)} duplicated, {r.get('errors', 0)} errors"
                        for r in runs
                    )
                )
    return found


# -- setup and main -------------------------------------------------------------------------------


def _info(side: Side) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-server-{side.name}-info-"))
    try:
        return call_worker(side, "info", {}, folder, side.env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def setup(args: argparse.Namespace) -> tuple[list[Side], dict[str, Any]]:
    sides: list[Side] = []
    workers: dict[str, Any] = {}
    if "loopml" in args.only:
        env = {} if args.no_snapshot else snapshot_loopml(SNAPSHOT_DIR)
        side = Side("loopml", Path(sys.executable), env)
        workers["loopml"] = _info(side)
        sides.append(side)
    if "mlflow" in args.only:
        python = ensure_venv("mlflow", "mlflow", args.mlflow_version)
        side = Side("mlflow", python, dict(MLFLOW_ENV))
        workers["mlflow"] = _info(side)
        sides.append(side)
    return sides, workers


def machine_info(workers: dict[str, Any]) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "temp_dir": tempfile.gettempdir(),
        "loopml_git": git_state(),
        "workers": workers,
    }


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", "--repeat", type=int, default=3, help="medians of N runs")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run only")
    parser.add_argument(
        "--only", action="append", help="sides to run, a comma list of loopml, mlflow"
    )
    parser.add_argument(
        "--workloads",
        action="append",
        help=f"workloads to run, a comma list of {', '.join(WORKLOAD_NAMES)} (default: all)",
    )
    parser.add_argument("--mlflow-version", default=MLFLOW_VERSION, help=f"{MLFLOW_VERSION}")
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run loopml from the working tree instead of a copy of src/loopml taken at start",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--markdown", action="store_true", help="a markdown table, not rich")
    parser.add_argument(
        "--json",
        type=Path,
        default=WORK_DIR / "server.json",
        help="where to write every raw result (default benchmarks/.work/server.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.only = _comma_list(parser, args.only, SIDES, "--only")
    args.workloads = _comma_list(parser, args.workloads, WORKLOAD_NAMES, "--workloads")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        sides, workers = setup(args)
    except (WorkerError, subprocess.CalledProcessError) as exc:
        log(f"[red]setup failed:[/red] {exc}")
        return 2
    if "artifact" in args.workloads:
        try:
            import psutil  # noqa: F401
        except ImportError:
            log("[yellow]psutil is not installed here: no RSS figures[/yellow]")
    info = machine_info(workers)
    scale = "quick" if args.quick else "full"
    blob_dir = Path(tempfile.mkdtemp(prefix="bench-server-blob-"))
    try:
        blob = None
        if "artifact" in args.workloads:
            mb = SIZES[scale][sides[0].name]["artifact"]["mb"]
            blob = make_blob(blob_dir, mb)
            log(f"artifact: {mb} MB of random bytes, sha256 {blob[1][:16]}…")
        samples, problems = run_all(sides, args, blob)
    finally:
        shutil.rmtree(blob_dir, ignore_errors=True)
    rows = summarise(samples, args.only, problems)

    git = info["loopml_git"]
    loopml_text = (
        f"loopml {workers['loopml'].get('loopml')} (commit {git['commit']}"
        f"{', src/ modified' if git['src_dirty'] else ''})"
        if "loopml" in workers
        else "loopml skipped"
    )
    mlflow_text = (
        f"MLflow {workers['mlflow']['mlflow']}" if "mlflow" in workers else "MLflow skipped"
    )
    label = "QUICK SMOKE RUN (small sizes, not comparable)" if args.quick else "full sizes"
    title = (
        f"Server benchmark: {label}; median of {args.repeats}; sides: {', '.join(args.only)}\n"
        f"{loopml_text} vs {mlflow_text}; both on SQLite + a local artifact folder, "
        "127.0.0.1, one worker process each\n"
        f"{info['cpu']}, {info['cores']} CPUs, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}, temp folders in {info['temp_dir']}"
    )
    print()
    print_table(table_rows(rows, scale, args.only), title, args.markdown)
    print("\nNotes:")
    for note in notes(samples, args.only):
        print(f"- {note}")
    for problem in problems:
        print(f"- PROBLEM: {problem}")
    report = {
        "benchmark": "server",
        "quick": args.quick,
        "repeats": args.repeats,
        "sides": args.only,
        "workloads": args.workloads,
        "sizes": {side: SIZES[scale][side] for side in args.only},
        "seconds": time.perf_counter() - started,
        "machine": info,
        "results": [asdict(r) for r in rows],
        "problems": problems,
        "samples": [asdict(s) for s in samples],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log(f"raw results written to {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
