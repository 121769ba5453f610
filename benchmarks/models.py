"""Models benchmark: log, register and load the same scikit-learn model with loopml and MLflow.

    python3 benchmarks/models.py                    # both sides, median of 5 repeats
    python3 benchmarks/models.py --repeats 2 --only mlflow
    python3 benchmarks/models.py --markdown --json benchmarks/.work/models.json

The model: ``RandomForestClassifier(n_estimators=100, random_state=0)`` fitted on
``load_breast_cancer(as_frame=True)`` (569 rows x 30 columns, a DataFrame), the same on both
sides. Timed separately, in a fresh store (SQLite + a local artifact folder in a fresh temporary
folder) per repeat: ``log_model`` with an input example and the requirements captured as users
get them by default, ``register`` as ``churn``, the cold load of ``models:/churn/1`` (the first
in the process) and its first ``predict``, the warm load of the same version (the median of 20
more loads in the same process), and the whole log + register + load + predict, both as the sum
of those steps and timed as one block in a process of its own. MLflow's ``log_model`` is also
timed with ``pip_requirements`` given, which skips its requirement inference, to show where its
time goes.

Each measurement runs in its own process: loopml's under this interpreter from a snapshot of
src/loopml (``_loopml_models_worker.py``), MLflow's in ``benchmarks/.venvs/mlflow``
(``_mlflow_models_worker.py``) with the same scikit-learn version as this interpreter. MLflow
never enters loopml's interpreter. Imports, the store's creation and the fit are not timed.
Every repeat checks that the loaded models predict exactly what ``model.predict(X)`` does.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

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

from tracking import MLFLOW_ENV, MLFLOW_VERSION

SIDES = ("loopml", "mlflow")
SNAPSHOT_DIR = WORK_DIR / "models" / "snapshot"
TIMEOUT_S = 900
WARM_LOADS = 20
WORKERS = {
    "loopml": BENCH_DIR / "_loopml_models_worker.py",
    "mlflow": BENCH_DIR / "_mlflow_models_worker.py",
}
# the processes of one repeat, per side: the separately timed steps, the one block, and
# (MLflow only) log_model with its requirement inference skipped
OPS = {"loopml": ("steps", "block"), "mlflow": ("steps", "block", "log_given")}


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    target_ratio: float | None = None  # MLflow / loopml, at least

    def target_text(self) -> str:
        return "" if self.target_ratio is None else f">={self.target_ratio:g}x"


METRICS = [
    Metric("log", "log_model (requirements captured, default)", 20),
    Metric("log_given", "log_model, MLflow with pip_requirements given (no inference)"),
    Metric("register", "register"),
    Metric("load", "load, cold (first in the process)"),
    Metric("predict", "first predict (569 rows)"),
    Metric("load_predict", "cold load + first predict"),
    Metric("warm_load", f"warm load (median of {WARM_LOADS})", 50),
    Metric("e2e_sum", "log + register + load + predict (sum of the steps)", 10),
    Metric("e2e_block", "log + register + load + predict (one block)", 10),
]


@dataclass
class Sample:
    side: str
    op: str
    repeat: int
    seconds: dict[str, float]  # metric -> seconds
    extra: dict[str, Any]


@dataclass
class Row:
    metric: str
    title: str
    medians: dict[str, float]  # side -> median seconds
    values: dict[str, list[float]]  # side -> seconds per repeat
    ratio: float | None
    target: str
    met: bool | None


@dataclass(frozen=True)
class Side:
    name: str
    python: Path
    env: dict[str, str]


# -- running the workers ----------------------------------------------------------------------


def _metrics_of(op: str, seconds: dict[str, float]) -> dict[str, float]:
    """The table's metrics from one worker's timings (the sums are per repeat)."""
    if op == "block":
        return {"e2e_block": seconds["block"]}
    if op == "log_given":
        return {"log_given": seconds["log_given"]}
    found = {k: seconds[k] for k in ("log", "register", "load", "predict", "warm_load")}
    found["load_predict"] = seconds["load"] + seconds["predict"]
    found["e2e_sum"] = seconds["log"] + seconds["register"] + seconds["load"] + seconds["predict"]
    return found


def measure(side: Side, op: str, warm: int, keep: bool) -> dict[str, Any]:
    """One process on a fresh store in a fresh temporary folder; its JSON result."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-models-{side.name}-{op}-"))
    try:
        env = dict(side.env)
        if side.name == "loopml":
            env["LOOPML_TRACKING_URI"] = str(folder / "store")
            env["LOOPML_CACHE_DIR"] = str(folder / "cache")
        spec: dict[str, Any] = {"op": op, "dir": str(folder)}
        if op == "steps":
            spec["warm"] = warm
        result: dict[str, Any] = run_json(
            [str(side.python), str(WORKERS[side.name]), json.dumps(spec)],
            cwd=folder,
            env=env,
            timeout=TIMEOUT_S,
        )
        return result
    finally:
        if keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def check(op: str, result: dict[str, Any], warm: int) -> list[str]:
    """Correctness of one measurement: the loaded model predicts what the fitted one does."""
    found = []
    reference = result.get("reference")
    if result.get("predictions") != reference:
        found.append(
            f"the loaded model's predictions (hash {result.get('predictions')}) differ from "
            f"model.predict(X) (hash {reference})"
        )
    if op == "steps":
        if warm and result.get("warm_predictions") != reference:
            found.append(
                f"the warm-loaded model's predictions (hash {result.get('warm_predictions')}) "
                f"differ from model.predict(X) (hash {reference})"
            )
        if len(result.get("warm_s", [])) != warm:
            found.append(f"{len(result.get('warm_s', []))} warm loads timed, not {warm}")
    if op in ("steps", "block") and result.get("version") != 1:
        found.append(f"register returned version {result.get('version')}, not 1")
    return found


def run_all(
    sides: list[Side], repeats: int, warm: int, keep: bool
) -> tuple[list[Sample], list[str]]:
    samples: list[Sample] = []
    problems: list[str] = []
    for repeat in range(1, repeats + 1):
        order = sides if repeat % 2 else sides[::-1]  # alternate: drift hits both sides
        for side in order:
            for op in OPS[side.name]:
                label = f"{side.name} {op} {repeat}/{repeats}"
                try:
                    result = measure(side, op, warm, keep)
                except (WorkerError, KeyError, ValueError) as exc:
                    detail = str(exc).strip()
                    if detail.endswith("last output:"):  # nothing on stdout: see its stderr
                        detail += " (none; the worker's stderr is in the log above)"
                    message = f"{label}: {type(exc).__name__}: {detail}"
                    log(f"[red]{message}[/red]")
                    problems.append(message)
                    continue
                for problem in check(op, result, warm):
                    problems.append(f"{label}: {problem}")
                    log(f"[red]{label}: {problem}[/red]")
                seconds = _metrics_of(op, result.pop("seconds"))
                samples.append(Sample(side.name, op, repeat, seconds, result))
                shown = ", ".join(f"{k} {_secs(v)}" for k, v in seconds.items())
                log(f"{label} -> {shown}")
    references = {s.extra.get("reference") for s in samples}
    if len(references) > 1:
        problems.append(
            f"model.predict(X) differs between processes ({sorted(map(str, references))}): "
            "the sides did not fit the same model"
        )
    return samples, problems


def summarise(samples: list[Sample], sides: Sequence[str]) -> list[Row]:
    rows = []
    for metric in METRICS:
        values = {
            side: [
                s.seconds[metric.name]
                for s in samples
                if s.side == side and metric.name in s.seconds
            ]
            for side in sides
        }
        values = {side: v for side, v in values.items() if v}
        if not values:
            continue
        medians = {side: median(v) for side, v in values.items()}
        mine, theirs = medians.get("loopml"), medians.get("mlflow")
        ratio = theirs / mine if mine and theirs else None
        met = None
        if metric.target_ratio is not None and ratio is not None:
            met = ratio >= metric.target_ratio
        rows.append(
            Row(metric.name, metric.title, medians, values, ratio, metric.target_text(), met)
        )
    return rows


# -- the report ---------------------------------------------------------------------------------


def _secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


HEADER = ["workload", "loopml", "MLflow", "MLflow/loopml", "target", "met?"]
RIGHT = {1, 2, 3}


def table_rows(rows: list[Row]) -> list[list[str]]:
    out = []
    for r in rows:
        out.append(
            [
                r.title,
                _secs(r.medians.get("loopml")) if "loopml" in r.medians else "-",
                _secs(r.medians.get("mlflow")) if "mlflow" in r.medians else "-",
                "n/a" if r.ratio is None else f"{r.ratio:,.1f}x",
                r.target,
                "" if not r.target else "n/a" if r.met is None else "yes" if r.met else "NO",
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


def notes(rows: list[Row], samples: list[Sample], warm: int) -> list[str]:
    found = [
        "One process per measurement, each on a fresh store (SQLite + a local artifact folder "
        "in a fresh temporary folder; loopml also gets a fresh LOOPML_CACHE_DIR). Imports, the "
        "store and its experiment, and the fit are made before any clock starts, and so is "
        "importing skops, the serializer both sides use (its import walks every scikit-learn "
        "module and, with torch installed, imports torch: 1.9 s here, once per process, on "
        "either side); other modules the calls import lazily are timed. The sides "
        "alternate their order across repeats; the table shows medians, the sums per repeat.",
        "log_model: loopml.models.log_model(model, 'model', input_example=X.iloc[:5]) vs "
        "mlflow.sklearn.log_model(model, name='model', input_example=X.iloc[:5]), inside a run "
        "started (and ended) outside the clock. MLflow 3 saves scikit-learn models with skops "
        "by default and refuses a random forest unless skops_trusted_types="
        "['sklearn.tree._tree.Tree'] is passed, as its error message says, so it is.",
        "MLflow's requirement inference (pip_requirements not given, the default) loads the "
        "model in a subprocess to see what it imports; the 'pip_requirements given' row passes "
        "mlflow.sklearn.get_default_pip_requirements(include_skops=True) instead, which skips "
        "it (documented: inference happens only when pip_requirements is None).",
        "register: loopml.registry.register(info.uri, 'churn') vs "
        "mlflow.register_model(info.model_uri, 'churn'). Loads: loopml.models.load / "
        "mlflow.pyfunc.load_model of 'models:/churn/1'; the warm load is the median of "
        f"{warm} more loads of the same version in the same process (MLflow resolves and "
        "copies the artifacts again each time; loopml may serve it from its in-process cache).",
        "One block: start_run + log_model + end of run, register, load and predict timed "
        "together in a process of its own (a separate fresh store).",
        "Correctness: every process compares a hash of the loaded model's predictions on X "
        "(values, dtype and shape) with model.predict(X) in the same process, and the "
        "reference hashes must agree across sides (the same fitted model); a mismatch fails "
        "the run.",
    ]
    given = next((r for r in rows if r.metric == "log_given"), None)
    default = next((r for r in rows if r.metric == "log"), None)
    if given and default and "mlflow" in given.medians and "mlflow" in default.medians:
        full, rest = default.medians["mlflow"], given.medians["mlflow"]
        found.append(
            f"MLflow's log_model took {_secs(full)} with requirement inference and "
            f"{_secs(rest)} without: inference is about {_secs(full - rest)} "
            f"({(full - rest) / full:.0%}) of it."
        )
    closing = [s.extra["end_run_s"] for s in samples if "end_run_s" in s.extra]
    if closing:
        by_side = {
            side: median(
                [s.extra["end_run_s"] for s in samples if s.side == side and "end_run_s" in s.extra]
            )
            for side in sorted({s.side for s in samples if "end_run_s" in s.extra})
        }
        found.append(
            "End of the run after log_model (untimed in the steps, inside the block): "
            + ", ".join(f"{side} {_secs(v)}" for side, v in by_side.items())
            + "."
        )
    return found


# -- setup and main -----------------------------------------------------------------------------


def _info(side: Side) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-models-{side.name}-info-"))
    try:
        result: dict[str, Any] = run_json(
            [str(side.python), str(WORKERS[side.name]), json.dumps({"op": "info", "dir": "."})],
            cwd=folder,
            env=side.env,
            timeout=600,
        )
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sklearn_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("scikit-learn")


def setup(args: argparse.Namespace) -> tuple[list[Side], dict[str, Any]] | str:
    """The sides to measure and their workers' versions; or why the run cannot go on."""
    sides: list[Side] = []
    workers: dict[str, Any] = {}
    try:
        sklearn_version = _sklearn_version()
    except Exception as exc:
        return f"scikit-learn is needed in this interpreter: {exc}"
    if "loopml" in args.only:
        env = {} if args.no_snapshot else snapshot_loopml(SNAPSHOT_DIR)
        side = Side("loopml", Path(sys.executable), env)
        workers["loopml"] = _info(side)
        if workers["loopml"].get("api_error"):
            return (
                f"the loopml models API is not there ({workers['loopml']['api_error']}). "
                "Measure MLflow alone with --only mlflow"
            )
        sides.append(side)
    if "mlflow" in args.only:
        try:
            python = ensure_venv("mlflow", "mlflow", args.mlflow_version)
            ensure_distribution(python, "scikit-learn", sklearn_version)
        except (WorkerError, subprocess.CalledProcessError) as exc:
            return f"cannot set up benchmarks/.venvs/mlflow: {exc}"
        side = Side("mlflow", python, dict(MLFLOW_ENV))
        workers["mlflow"] = _info(side)
        if not workers["mlflow"].get("log_model_has_name"):
            return f"mlflow.sklearn.log_model of MLflow {workers['mlflow']['mlflow']} has no name="
        sides.append(side)
    versions = {name: w.get("sklearn") for name, w in workers.items()}
    if len(set(versions.values())) > 1:
        return f"the sides run different scikit-learn versions: {versions}"
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
    parser.add_argument("--repeats", "--repeat", type=int, default=5, help="medians of N runs")
    parser.add_argument(
        "--only", action="append", help="sides to run, a comma list of loopml, mlflow"
    )
    parser.add_argument(
        "--warm", type=int, default=WARM_LOADS, help=f"warm loads per process ({WARM_LOADS})"
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
        default=WORK_DIR / "models.json",
        help="where to write every raw timing (default benchmarks/.work/models.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.warm < 1:
        parser.error("--warm must be at least 1")
    args.only = _comma_list(parser, args.only, SIDES, "--only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        ready = setup(args)
    except WorkerError as exc:
        log(f"[red]setup failed:[/red] {exc}")
        return 2
    if isinstance(ready, str):
        log(f"[red]cannot run:[/red] {ready}")
        return 2
    sides, workers = ready
    info = machine_info(workers)
    samples, problems = run_all(sides, args.repeats, args.warm, args.keep)
    rows = summarise(samples, args.only)

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
    any_worker = next(iter(workers.values()))
    title = (
        f"Models benchmark: median of {args.repeats}; sides: {', '.join(args.only)}\n"
        f"{loopml_text} vs {mlflow_text}; scikit-learn {any_worker.get('sklearn')}, "
        f"RandomForestClassifier(n_estimators=100) on breast_cancer (569 x 30)\n"
        f"{info['cpu']}, {info['cores']} CPUs, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}, temp folders in {info['temp_dir']}"
    )
    print()
    print_table(table_rows(rows), title, args.markdown)
    print("\nNotes:")
    for note in notes(rows, samples, args.warm):
        print(f"- {note}")
    for problem in problems:
        print(f"- PROBLEM: {problem}")
    report = {
        "benchmark": "models",
        "repeats": args.repeats,
        "warm_loads": args.warm,
        "sides": args.only,
        "seconds": time.perf_counter() - started,
        "machine": info,
        "results": [asdict(r) for r in rows],
        "problems": problems,
        "samples": [asdict(s) for s in samples],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log(f"raw timings written to {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
