"""Tracking benchmark: the same workloads through loopml and MLflow, in one run.

    python3 benchmarks/tracking.py                 # full sizes, 3 repetitions
    python3 benchmarks/tracking.py --quick         # smoke run with small sizes
    python3 benchmarks/tracking.py --only search --repeat 5
    python3 benchmarks/tracking.py --skip-mlflow   # loopml only; ratios are n/a

Both tools use a SQLite store and a local artifact folder in a fresh temporary folder per
workload and repetition. Every workload runs in its own process: loopml's in this interpreter
(``_loopml_worker.py``), MLflow's in ``benchmarks/.venvs/mlflow`` (``_mlflow_worker.py``), which
this script creates with ``python3 -m venv`` and ``pip install mlflow==<version>`` the first time.
loopml's environment never sees MLflow. Repetitions alternate loopml and MLflow, and the table
shows the median of the repetitions. See docs/benchmarks.md for results and method notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    WORK_DIR,
    WorkerError,
    ensure_venv,
    log,
    median,
    run_json,
)

MLFLOW_VERSION = "3.17.2"  # 3.18.0 needs mlflow-skinny 3.18.0, which the index lacks (see docs)
WORKER_TIMEOUT_S = 3600
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no usage reporting threads during the timings
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",  # MLflow's default; pinned so the env cannot flip it
}
IMPORT_CODE = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


@dataclass(frozen=True)
class Sizes:
    """Worker parameters of one tool, full and ``--quick``."""

    full: dict[str, Any]
    quick: dict[str, Any]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    unit: str  # "points/s", "runs/s" or "ms"
    higher_is_better: bool
    loopml: Sizes
    mlflow: Sizes
    target_ratio: float | None = None
    loopml_limit: float | None = None  # loopml's median must stay below this (in ``unit``)
    note: str = ""

    def target_text(self) -> str:
        parts = []
        if self.target_ratio is not None:
            parts.append(f">={self.target_ratio:g}x")
        if self.loopml_limit is not None:
            parts.append(f"loopml <{self.loopml_limit:g} {self.unit}")
        return ", ".join(parts)


@dataclass
class SideResult:
    """One tool's figures for one workload: a value per repetition and their median."""

    tool: str
    params: dict[str, Any]
    values: list[float]
    median: float
    seconds: list[float] = field(default_factory=list)  # the timed part of each repetition
    stored: list[int] = field(default_factory=list)  # what the store held afterwards
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # details of the median repetition


@dataclass
class WorkloadResult:
    name: str
    title: str
    unit: str
    target: str
    loopml: SideResult | None
    mlflow: SideResult | None
    ratio: float | None
    met: bool | None
    note: str = ""
    problems: list[str] = field(default_factory=list)


WORKLOADS: list[Workload] = [
    Workload(
        "fluent",
        "fluent log_metric in one run",
        "points/s",
        True,
        Sizes({"points": 10_000}, {"points": 1_000}),
        Sizes({"points": 2_000}, {"points": 100}),
        target_ratio=1000,
        note="timed from start_run to the end of the run (loopml: buffered, flushed at the end "
        "and by loopml.flush(); MLflow: each call synchronous); MLflow logs fewer points",
    ),
    Workload(
        "batch",
        "log_batch, 1,000 points a call",
        "points/s",
        True,
        Sizes({"points": 100_000, "batch_size": 1000}, {"points": 10_000, "batch_size": 1000}),
        Sizes({"points": 100_000, "batch_size": 1000}, {"points": 5_000, "batch_size": 1000}),
        target_ratio=30,
        note="Metric objects built before the clock starts",
    ),
    Workload(
        "runs",
        "runs of 10 params + 5 metrics",
        "runs/s",
        True,
        Sizes(
            {"runs": 1000, "n_params": 10, "n_metrics": 5},
            {"runs": 100, "n_params": 10, "n_metrics": 5},
        ),
        Sizes(
            {"runs": 1000, "n_params": 10, "n_metrics": 5},
            {"runs": 20, "n_params": 10, "n_metrics": 5},
        ),
        target_ratio=50,
        note="client.create_run + log_batch(metrics, params) + set_terminated per run",
    ),
    Workload(
        "search",
        "search_runs, first 100",
        "ms",
        False,
        Sizes({"runs": 10_000, "queries": 20}, {"runs": 1_000, "queries": 5}),
        Sizes(
            {"runs": 10_000, "queries": 20, "populate": "api"},
            {"runs": 1_000, "queries": 5, "populate": "sql"},
        ),
        target_ratio=20,
        loopml_limit=30,
        note="filter \"params.model = 'rf' and metrics.loss < 0.5\", order by metrics.loss ASC, "
        "first 100; median of the queries after one untimed warm-up query",
    ),
    Workload(
        "history",
        "get_metric_history",
        "ms",
        False,
        Sizes({"points": 100_000, "reads": 5}, {"points": 10_000, "reads": 3}),
        Sizes({"points": 100_000, "reads": 5}, {"points": 10_000, "reads": 3}),
        target_ratio=50,
        loopml_limit=200,
        note="median of the reads after one untimed warm-up read",
    ),
    Workload(
        "concurrent",
        "4 processes, one store",
        "points/s",
        True,
        Sizes({"procs": 4, "points": 2_000}, {"procs": 4, "points": 200}),
        Sizes({"procs": 4, "points": 500}, {"procs": 4, "points": 20}),
        target_ratio=100,
        note="stored points / wall time from the start signal to the last process done "
        "(processes import and open the store before the signal); MLflow logs fewer points",
    ),
    Workload(
        "import",
        "import time",
        "ms",
        False,
        Sizes({"times": 10}, {"times": 3}),
        Sizes({"times": 10}, {"times": 3}),
        loopml_limit=150,
        note="median of fresh interpreters running "
        "`t=time.perf_counter(); import X; print(time.perf_counter()-t)`",
    ),
]


# -- running the workloads --------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str  # "loopml" or "mlflow"
    python: Path
    worker: Path
    env: dict[str, str]


def _call_worker(tool: Tool, workload: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one workload in a fresh process on a fresh store; return its JSON result."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool.name}-{workload}-") as folder:
        spec = {"workload": workload, "dir": folder, "params": params}
        result: dict[str, Any] = run_json(
            [str(tool.python), str(tool.worker), json.dumps(spec)],
            cwd=folder,
            env=tool.env,
            timeout=WORKER_TIMEOUT_S,
        )
    return result


def _time_import(tool: Tool) -> float:
    """Seconds to import the tool in a fresh interpreter, measured inside it."""
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        done = subprocess.run(
            [str(tool.python), "-c", IMPORT_CODE.format(module=tool.name)],
            cwd=folder,
            env={**os.environ, **tool.env},
            capture_output=True,
            text=True,
            check=True,
        )
    return float(done.stdout.strip().splitlines()[-1])


def _measure(tool: Tool, workload: Workload, params: dict[str, Any]) -> dict[str, Any]:
    if workload.name == "import":
        return {"value": _time_import(tool) * 1000, "stored": 0}
    return _call_worker(tool, workload.name, params)


def _side(tool: Tool, params: dict[str, Any], runs: list[dict[str, Any]]) -> SideResult:
    values = [r["value"] for r in runs]
    middle = sorted(runs, key=lambda r: r["value"])[len(runs) // 2]
    return SideResult(
        tool=tool.name,
        params=params,
        values=values,
        median=median(values),
        seconds=[r.get("seconds", 0.0) for r in runs],
        stored=[r.get("stored", 0) for r in runs],
        errors=sum(r.get("errors", 0) for r in runs),
        extra=middle.get("extra", {}),
    )


def _ratio(
    workload: Workload, loopml: SideResult | None, mlflow: SideResult | None
) -> float | None:
    if loopml is None or mlflow is None or not loopml.median or not mlflow.median:
        return None
    if workload.higher_is_better:
        return loopml.median / mlflow.median
    return mlflow.median / loopml.median


def _met(workload: Workload, loopml: SideResult | None, ratio: float | None) -> bool | None:
    checks: list[bool] = []
    if workload.target_ratio is not None and ratio is not None:
        checks.append(ratio >= workload.target_ratio)
    if workload.loopml_limit is not None and loopml is not None:
        checks.append(loopml.median < workload.loopml_limit)
    return all(checks) if checks else None


def _problems(
    workload: Workload, loopml: SideResult | None, mlflow: SideResult | None
) -> list[str]:
    """Correctness checks: every logged point stored, no errors, same search results."""
    found = []
    expected = {"fluent": "points", "batch": "points", "runs": "runs", "concurrent": None}
    for side in (loopml, mlflow):
        if side is None or workload.name not in expected:
            continue
        key = expected[workload.name]
        want = side.params["procs"] * side.params["points"] if key is None else side.params[key]
        if any(n != want for n in side.stored):
            found.append(f"{side.tool} stored {side.stored} of {want:,} per repetition")
        if side.errors:
            samples = side.extra.get("error_samples", [])
            found.append(f"{side.tool}: {side.errors} errors, e.g. {samples[:1]}")
    if workload.name == "search" and loopml is not None and mlflow is not None:
        mine, theirs = loopml.extra, mlflow.extra
        if (mine.get("results"), mine.get("first_losses")) != (
            theirs.get("results"),
            theirs.get("first_losses"),
        ):
            found.append("loopml and MLflow search results differ")
    return found


def run_workload(workload: Workload, tools: list[Tool], repeat: int, quick: bool) -> WorkloadResult:
    params = {
        t.name: getattr(workload, t.name).quick if quick else getattr(workload, t.name).full
        for t in tools
    }
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tools}
    rounds = 1 if workload.name == "import" else repeat
    inner = params[tools[0].name].get("times", 1) if workload.name == "import" else 1
    for index in range(rounds * inner):
        for tool in tools:  # alternate the tools, so drift on a noisy machine hits both
            if inner == 1:
                log(f"{workload.name}: {tool.name} {index + 1}/{rounds} {params[tool.name]}")
            result = _measure(tool, workload, params[tool.name])
            runs[tool.name].append(result)
            log(f"{workload.name}: {tool.name} -> {result['value']:,.1f} {workload.unit}")
    sides = {t.name: _side(t, params[t.name], runs[t.name]) for t in tools}
    loopml, mlflow = sides.get("loopml"), sides.get("mlflow")
    ratio = _ratio(workload, loopml, mlflow)
    return WorkloadResult(
        name=workload.name,
        title=workload.title,
        unit=workload.unit,
        target=workload.target_text(),
        loopml=loopml,
        mlflow=mlflow,
        ratio=ratio,
        met=_met(workload, loopml, ratio),
        note=workload.note,
        problems=_problems(workload, loopml, mlflow),
    )


# -- the machine and the report ---------------------------------------------------------------


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git_state() -> dict[str, Any]:
    """The loopml commit measured, and whether src/ had uncommitted changes."""
    root = BENCH_DIR.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "src_dirty": bool(git("status", "--porcelain", "--", "src")),
    }


def machine_info(tools: list[Tool]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "temp_dir": tempfile.gettempdir(),
        "loopml_git": _git_state(),
    }
    for tool in tools:
        info[tool.name] = _call_worker(tool, "info", {})
    return info


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:,.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"


def _size_text(workload: str, side: SideResult | None) -> str:
    if side is None:
        return "-"
    p = side.params
    return {
        "fluent": lambda: f"{p['points']:,} calls",
        "batch": lambda: f"{p['points']:,} pts",
        "runs": lambda: f"{p['runs']:,} runs",
        "search": lambda: f"{p['runs']:,} runs",
        "history": lambda: f"{p['points']:,} pts",
        "concurrent": lambda: f"4x{p['points']:,} pts",
        "import": lambda: f"{p['times']} imports",
    }[workload]()


def render_table(results: list[WorkloadResult]) -> str:
    header = ["workload", "loopml", "MLflow", "ratio", "target", "met?", "sizes (loopml / MLflow)"]
    rows = [header]
    for r in results:
        met = "n/a" if r.met is None else ("yes" if r.met else "NO")
        rows.append(
            [
                r.title,
                _fmt(r.loopml.median if r.loopml else None, r.unit),
                _fmt(r.mlflow.median if r.mlflow else None, r.unit),
                "n/a" if r.ratio is None else f"{r.ratio:,.1f}x",
                r.target,
                met,
                f"{_size_text(r.name, r.loopml)} / {_size_text(r.name, r.mlflow)}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {1, 2, 3}
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append(
                "|"
                + "|".join(
                    ("-" * (w + 1) + ":") if i in right else "-" * (w + 2)
                    for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(lines)


def render_notes(results: list[WorkloadResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"- {r.name}: {r.note}")
        for side in (r.loopml, r.mlflow):
            if side is not None and "populate" in side.extra:
                took = side.extra.get("populate_s")
                took_text = f" in {took:.1f}s" if took is not None else ""
                lines.append(f"    {side.tool} populated by {side.extra['populate']}{took_text}")
        for problem in r.problems:
            lines.append(f"    PROBLEM: {problem}")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run only")
    parser.add_argument(
        "--only",
        action="append",
        choices=[w.name for w in WORKLOADS],
        help="run only this workload (repeatable)",
    )
    parser.add_argument("--skip-mlflow", action="store_true", help="loopml only; no ratios")
    parser.add_argument(
        "--mlflow-version",
        default=MLFLOW_VERSION,
        help=f"MLflow release for benchmarks/.venvs/mlflow (default {MLFLOW_VERSION})",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run loopml from the working tree instead of a copy of src/loopml taken at start",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=WORK_DIR / "tracking.json",
        help="where to write the JSON results",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def snapshot_env() -> dict[str, str]:
    """Copy src/loopml aside and put the copy first on the loopml workers' PYTHONPATH.

    A full run takes a quarter of an hour; the copy keeps edits made meanwhile out of it, so
    every repetition measures the same code (the commit is in the JSON's machine section).
    """
    source = BENCH_DIR.parent / "src" / "loopml"
    if not source.is_dir():
        return {}
    target = WORK_DIR / "snapshot"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target / "loopml", ignore=shutil.ignore_patterns("__pycache__"))
    paths = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def make_tools(args: argparse.Namespace) -> list[Tool]:
    env = {} if args.no_snapshot else snapshot_env()
    tools = [Tool("loopml", Path(sys.executable), BENCH_DIR / "_loopml_worker.py", env)]
    if not args.skip_mlflow:
        python = ensure_venv("mlflow", "mlflow", args.mlflow_version)
        tools.append(Tool("mlflow", python, BENCH_DIR / "_mlflow_worker.py", MLFLOW_ENV))
    return tools


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tools = make_tools(args)
    except (WorkerError, subprocess.CalledProcessError) as exc:
        log(f"[red]cannot set up MLflow:[/red] {exc}")
        return 2
    selected = [w for w in WORKLOADS if not args.only or w.name in args.only]
    started = time.perf_counter()
    info = machine_info(tools)
    results = [run_workload(w, tools, args.repeat, args.quick) for w in selected]
    label = "QUICK SMOKE RUN (small sizes, not comparable)" if args.quick else "full sizes"
    mlflow_text = f"MLflow {info['mlflow']['mlflow']}" if "mlflow" in info else "MLflow skipped"
    git = info["loopml_git"]
    print(
        f"\nTracking benchmark: {label}; median of {args.repeat} repetition(s); "
        f"loopml {info['loopml']['loopml']} vs {mlflow_text}"
    )
    print(
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}; loopml at {git['commit']}"
        f"{' (src/ modified)' if git['src_dirty'] else ''}\n"
    )
    print(render_table(results))
    print("\nNotes:")
    print(render_notes(results))
    if not args.skip_mlflow:
        print(
            "- MLflow uses smaller sizes where marked in the sizes column; figures are rates, "
            "so they compare directly."
        )
    report = {
        "benchmark": "tracking",
        "quick": args.quick,
        "repeat": args.repeat,
        "seconds": time.perf_counter() - started,
        "machine": info,
        "results": [asdict(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    log(f"results written to {args.out}")
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
