"""Monitoring benchmark: loopml drift vs Evidently and NannyML, in one run, on the same data.

    python3 benchmarks/monitoring.py                         # 100,000 and 1,000,000 rows
    python3 benchmarks/monitoring.py --rows 100000 --repeats 5
    python3 benchmarks/monitoring.py --quick                 # 10,000 and 100,000 rows
    python3 benchmarks/monitoring.py --only loopml,numpy     # without the peers

One drift check of a current table against a reference table (each of 100,000 and of
1,000,000 rows; 15 numeric and 5 categorical columns from ``loopml.testing.drift_data``, with
three numeric columns and one categorical column shifted) by:

- **loopml**: ``loopml.monitoring.compare(reference, current)`` on two pyarrow Tables (and,
  as ``loopml (pandas)``, on two pandas DataFrames);
- **numpy**: the same scores computed plainly with numpy and scipy on the raw columns
  (quantile histograms, PSI, ``scipy.stats.wasserstein_distance``, ``ks_2samp``,
  ``chi2_contingency``, ``jensenshannon``) and the same decision rule: the floor that a
  hand-written check reaches;
- **Evidently** (``Report([DataDriftPreset()])``, pinned below, with ``pandas<3``) and
  **NannyML** (``UnivariateDriftCalculator``, default methods and chunking), each installed by
  this script into a virtualenv of its own under ``benchmarks/.venvs/`` and never imported by
  loopml's interpreter.

Every measurement runs in a fresh process that reads the same Parquet files (generated once,
seeded, under ``benchmarks/.work/monitoring/``) before the clock starts. Reported: wall time,
CPU time (all threads), the peak resident memory above what the process held after loading
the inputs, and which columns each tool flagged against the four shifted ones. Then the
streaming figures (loopml only): folding a 10,000-row window into its sketch, the state size
of a window, and merging 1,440 one-minute windows and evaluating them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
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

THIS = Path(__file__).resolve()
PEER_WORKER = THIS.parent / "_monitoring_peer_worker.py"
EVIDENTLY_VERSION = "0.7.23"
NANNYML_VERSION = "0.13.1"
PEER_EXTRAS = {
    "evidently": ["pandas<3", "pyarrow"],
    "nannyml": ["pandas<3", "pyarrow", "statsmodels"],
}
MON_DIR = WORK_DIR / "monitoring"
INPUTS_DIR = MON_DIR / "inputs"
SNAPSHOT_DIR = MON_DIR / "snapshot"
TIMEOUT_S = 3600
SIDES = ("loopml", "loopml-pandas", "numpy", "evidently", "nannyml")
LABELS = {
    "loopml": "loopml",
    "loopml-pandas": "loopml (pandas in)",
    "numpy": "numpy/scipy floor",
    "evidently": "Evidently",
    "nannyml": "NannyML",
}
GIB = 2**30
TARGET_ROWS = 1_000_000
TARGET_WALL_S = 3.0
TARGET_CPU_RATIO = 50.0
TARGET_MEMORY_BYTES = int(0.3 * GIB)
STREAM_ROWS = 10_000
STREAM_WINDOWS = 1_440
TARGET_FOLD_MS = 10.0
TARGET_STATE_BYTES = 16 * 1024
TARGET_REPORT_BYTES = 1_000_000
TARGET_MERGE_MS = 100.0


# -- the worker: one measurement in a fresh process --------------------------------------------
#
# ``python monitoring.py --worker '{"op": ...}'`` prints one JSON line. Inputs are read before
# the clock starts; ``_monitoring_measure.Meter`` measures the check alone.


def _columns(table: Any) -> tuple[list[str], list[str]]:
    import pyarrow as pa

    numeric = [
        f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    ]
    categorical = [f.name for f in table.schema if f.name not in numeric]
    return numeric, categorical


def _worker_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version()}
    for module in ("numpy", "pyarrow", "scipy", "pandas"):
        try:
            info[module] = __import__(module).__version__
        except Exception as exc:  # report; the driver decides what it needs
            info[module] = f"unavailable ({type(exc).__name__}: {exc})"
    try:
        import loopml
        from loopml.monitoring import compare  # noqa: F401

        info["loopml"] = loopml.__version__
        info["loopml_error"] = None
    except Exception as exc:
        info["loopml"] = None
        info["loopml_error"] = f"{type(exc).__name__}: {exc}"
    return info


def _worker_loopml(spec: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from _monitoring_measure import Meter

    from loopml.monitoring import compare

    reference = pq.read_table(spec["reference"])
    current = pq.read_table(spec["current"])
    if spec.get("pandas"):
        reference, current = reference.to_pandas(), current.to_pandas()
    with Meter() as meter:
        result = compare(reference, current)
    return {**meter.result(), "flagged": list(result.flagged), "status": result.status}


def _worker_numpy(spec: dict[str, Any]) -> dict[str, Any]:
    """The same scores and rule, written plainly with numpy and scipy on the raw columns."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from _monitoring_measure import Meter
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    reference = pq.read_table(spec["reference"])
    current = pq.read_table(spec["current"])
    numeric, categorical = _columns(reference)
    arrays = {n: (reference[n].to_numpy(), current[n].to_numpy()) for n in numeric}
    level = 0.05 / (len(numeric) + len(categorical))
    flagged = []
    with Meter() as meter:
        for name, (a, b) in arrays.items():
            edges = np.quantile(a, np.linspace(0, 1, 21))[1:-1]
            p = np.bincount(np.searchsorted(edges, a), minlength=20) / a.size
            q = np.bincount(np.searchsorted(edges, b), minlength=20) / b.size
            p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
            float(np.sum((q - p) * np.log(q / p)))  # PSI, reported by the tools
            effect = stats.wasserstein_distance(a, b) / np.std(a)
            ks = stats.ks_2samp(a, b)
            if effect >= 0.05 and ks.pvalue < level:
                flagged.append(name)
        for name in categorical:
            ref_codes = pc.dictionary_encode(reference[name]).combine_chunks()
            labels = ref_codes.dictionary.to_pylist()
            cur_codes = pc.index_in(current[name], value_set=ref_codes.dictionary).to_numpy(
                zero_copy_only=False
            )
            ref_counts = np.bincount(ref_codes.indices.to_numpy(), minlength=len(labels) + 1)
            cur_counts = np.bincount(
                np.where(np.isnan(cur_codes.astype(float)), len(labels), cur_codes).astype(int),
                minlength=len(labels) + 1,
            )
            used = (ref_counts + cur_counts) > 0
            table = np.vstack([ref_counts[used], cur_counts[used]])
            chi = stats.chi2_contingency(table, correction=False)
            p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
            jensenshannon(p, q, base=2)
            h = np.max(np.abs(2 * np.arcsin(np.sqrt(q)) - 2 * np.arcsin(np.sqrt(p))))
            if h >= 0.05 and chi.pvalue < level:
                flagged.append(name)
    return {**meter.result(), "flagged": flagged}


def _worker_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Streaming figures: fold a window, its state size, merging a day of minute windows."""
    import numpy as np
    import pyarrow.parquet as pq

    from loopml.data.profile import profile_table
    from loopml.monitoring import WindowSketch, compare

    reference = pq.read_table(spec["reference"])
    current = pq.read_table(spec["current"])
    profile = profile_table(reference)
    rows = spec["rows"]
    batch = current.slice(0, rows)
    as_numpy = {n: batch[n].to_numpy(zero_copy_only=False) for n in batch.column_names}

    def fold_ms(data: Any, repeats: int = 31) -> list[float]:
        times = []
        for _ in range(repeats):
            window = WindowSketch(profile)
            start = time.perf_counter()
            window.update(data)
            times.append((time.perf_counter() - start) * 1000)
        return times

    fold_numpy = fold_ms(as_numpy)
    fold_arrow = fold_ms(batch)
    window = WindowSketch(profile)
    window.update(as_numpy)
    state_bytes = len(json.dumps(window.to_dict(), allow_nan=False).encode())

    minute_rows = max(1, spec["minute_rows"])
    windows = []
    first = WindowSketch(profile)
    for index in range(spec["windows"]):
        start = (index * minute_rows) % max(current.num_rows - minute_rows, 1)
        minute = first.empty()
        minute.update(current.slice(start, minute_rows))
        windows.append(minute)
    largest_state = max(len(json.dumps(w.to_dict()).encode()) for w in windows[:60])
    merge_times, evaluate_times = [], []
    result = None
    for _ in range(7):
        start = time.perf_counter()
        merged = WindowSketch.merge_all(windows)
        middle = time.perf_counter()
        result = compare(profile, merged)
        end = time.perf_counter()
        merge_times.append((middle - start) * 1000)
        evaluate_times.append((end - middle) * 1000)
    total = [m + e for m, e in zip(merge_times, evaluate_times, strict=True)]
    return {
        "fold_rows": rows,
        "fold_numpy_ms": float(np.median(fold_numpy)),
        "fold_arrow_ms": float(np.median(fold_arrow)),
        "fold_numpy_all": fold_numpy,
        "fold_arrow_all": fold_arrow,
        "state_bytes": state_bytes,
        "minute_state_bytes": largest_state,
        "windows": len(windows),
        "minute_rows": minute_rows,
        "merge_ms": float(np.median(merge_times)),
        "evaluate_ms": float(np.median(evaluate_times)),
        "merge_evaluate_ms": float(np.median(total)),
        "merged_flagged": list(result.flagged) if result is not None else None,
        **_report_figures(reference, current, spec["windows"]),
    }


def _report_figures(reference: Any, current: Any, windows: int) -> dict[str, Any]:
    """A monitor's HTML report over ``windows`` stored one-minute windows of a 20-column model:
    one real check of a logged minute (its summary carries the histograms the report draws),
    the same summary stored for every other minute, then the report built and timed."""
    import tempfile

    import numpy as np

    from loopml import data, monitoring
    from loopml.serving.predlog import PredictionLog
    from loopml.storage.uris import open_store

    minute, t0 = 60_000, 1_790_000_000_000
    with tempfile.TemporaryDirectory() as folder:
        uri = str(Path(folder) / "store")
        data.add("reference", reference, tracking_uri=uri)
        monitoring.create(
            "bench", model="m", reference="reference@v1", window="1m", target=None,
            tracking_uri=uri,
        )  # fmt: skip
        store = open_store(uri)
        sample = current.slice(0, 1_000)
        inputs = {n: sample[n].to_numpy(zero_copy_only=False) for n in sample.column_names}
        with PredictionLog(store) as log:
            log.log("r", "m", 1, inputs, {"prediction": np.zeros(sample.num_rows)}, t0 + 1)
        monitoring.check("bench", at=t0 + minute, tracking_uri=uri)
        summary = store.list_monitor_results("bench")[0].summary
        for index in range(2, windows + 1):
            store.record_monitor_result(
                "bench",
                window_start=t0 + (index - 1) * minute,
                window_end=t0 + index * minute,
                status="ok",
                summary=summary,
            )
        store.close()
        path = Path(folder) / "report.html"
        times = []
        for _ in range(3):
            start = time.perf_counter()
            content = monitoring.report("bench", path, tracking_uri=uri)
            times.append((time.perf_counter() - start) * 1000)
        return {
            "report_windows": len(content["drift_over_time"]["times"]),
            "report_features": len(content["features"]),
            "report_bytes": path.stat().st_size,
            "report_ms": float(np.median(times)),
        }


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    op = spec["op"]
    if op == "info":
        return _worker_info()
    if op == "loopml":
        return _worker_loopml(spec)
    if op == "numpy":
        return _worker_numpy(spec)
    if op == "stream":
        return _worker_stream(spec)
    raise ValueError(f"unknown worker op {op!r}")


# -- inputs ------------------------------------------------------------------------------------


def prepare_inputs(rows: int, seed: int) -> tuple[Path, Path]:
    """The reference and current Parquet files of ``rows`` rows (generated once, reused)."""
    INPUTS_DIR.mkdir(parents=True, exist_ok=True)
    reference = INPUTS_DIR / f"reference_{rows}_{seed}.parquet"
    current = INPUTS_DIR / f"current_{rows}_{seed}.parquet"
    marker = INPUTS_DIR / f"inputs_{rows}_{seed}.json"
    want = {"rows": rows, "seed": seed, "scenario": "shift", "format": 1}
    try:
        ready = json.loads(marker.read_text()) == want and reference.is_file() and current.is_file()
    except (OSError, ValueError):
        ready = False
    if not ready:
        log(f"generating {rows:,}-row reference and current tables (seed {seed})")
        code = (
            "import sys, pyarrow.parquet as pq\n"
            "from loopml.testing.drift_data import drift_tables\n"
            "r, c = drift_tables(int(sys.argv[1]), scenario='shift', seed=int(sys.argv[2]))\n"
            "pq.write_table(r, sys.argv[3]); pq.write_table(c, sys.argv[4])\n"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(rows), str(seed), str(reference), str(current)],
            check=True,
        )
        marker.write_text(json.dumps(want))
    return reference, current


def expected_flags() -> list[str]:
    code = "from loopml.testing.drift_data import SHIFTED; print(','.join(SHIFTED))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().split(",")


def table_columns(path: Path) -> tuple[list[str], list[str]]:
    code = (
        "import json, sys, pyarrow.parquet as pq, pyarrow as pa\n"
        "s = pq.read_schema(sys.argv[1])\n"
        "num = [f.name for f in s if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]\n"
        "print(json.dumps([num, [f.name for f in s if f.name not in num]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    numeric, categorical = json.loads(done.stdout)
    return numeric, categorical


# -- peers -------------------------------------------------------------------------------------


def ensure_peer(name: str, version: str) -> Path:
    """The python of ``benchmarks/.venvs/<name>`` with the tool, ``pandas<3`` and pyarrow."""
    python = ensure_venv(name, name, version)
    check = (
        f"import {name}, pandas, pyarrow, sys\n"
        "sys.exit(0 if int(pandas.__version__.split('.')[0]) < 3 else 1)\n"
    )
    done = subprocess.run([str(python), "-c", check], capture_output=True, check=False)
    if done.returncode != 0:
        log(f"installing {', '.join(PEER_EXTRAS[name])} into the {name} virtualenv")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"{name}=={version}",
             *PEER_EXTRAS[name]],
            check=True,
        )  # fmt: skip
    return python


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Sample:
    side: str
    rows: int
    repeat: int
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Row:
    side: str
    rows: int
    wall_s: float | None = None
    cpu_s: float | None = None
    extra_bytes: float | None = None
    flagged: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    repeats: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Context:
    loopml_env: dict[str, str]
    peers: dict[str, Path]
    expected: list[str]


def measure(ctx: Context, side: str, rows: int, reference: Path, current: Path) -> dict[str, Any]:
    if side in ("loopml", "loopml-pandas", "numpy"):
        op = "numpy" if side == "numpy" else "loopml"
        spec = {
            "op": op,
            "reference": str(reference),
            "current": str(current),
            "pandas": side == "loopml-pandas",
        }
        command = [sys.executable, str(THIS), "--worker", json.dumps(spec)]
        result: dict[str, Any] = run_json(command, env=ctx.loopml_env, timeout=TIMEOUT_S)
        return result
    numeric, categorical = table_columns(reference)
    spec = {
        "tool": side,
        "reference": str(reference),
        "current": str(current),
        "numeric": numeric,
        "categorical": categorical,
    }
    command = [str(ctx.peers[side]), str(PEER_WORKER), json.dumps(spec)]
    quiet = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1"}  # no telemetry calls
    peer: dict[str, Any] = run_json(command, cwd=THIS.parent, env=quiet, timeout=TIMEOUT_S)
    return peer


def summarise(side: str, rows: int, samples: list[Sample], expected: list[str]) -> Row:
    good = [s.result for s in samples if s.result is not None]
    row = Row(side, rows, repeats=len(good), errors=[s.error for s in samples if s.error])
    if not good:
        return row
    row.wall_s = median([r["seconds"] for r in good])
    row.cpu_s = median([r["cpu_seconds"] for r in good])
    row.extra_bytes = median([r["peak_extra_bytes"] for r in good])
    row.flagged = list(good[0]["flagged"])
    row.false_alarms = [c for c in row.flagged if c not in expected]
    row.missed = [c for c in expected if c not in row.flagged]
    if side == "nannyml":
        row.note = f"{good[0].get('alerts', 0)} chunk alerts over {good[0].get('chunks')} chunks"
    if side == "evidently":
        methods = sorted(set(good[0].get("methods", {}).values()))
        row.note = "; ".join(methods)
    if any(r["flagged"] != good[0]["flagged"] for r in good):
        row.note += " (flags differed between repeats)"
    return row


def run_all(args: argparse.Namespace, ctx: Context) -> tuple[list[Row], list[Sample]]:
    rows_out: list[Row] = []
    samples: list[Sample] = []
    for rows in args.rows:
        reference, current = prepare_inputs(rows, args.seed)
        for side in args.only:
            repeats = (
                args.repeats if side in ("loopml", "loopml-pandas", "numpy") else args.peer_repeats
            )
            got: list[Sample] = []
            for repeat in range(repeats):
                log(f"{LABELS[side]} at {rows:,} rows, repeat {repeat + 1}/{repeats}")
                sample = Sample(side, rows, repeat)
                try:
                    sample.result = measure(ctx, side, rows, reference, current)
                    r = sample.result
                    log(
                        f"  {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} CPU-s, "
                        f"+{r['peak_extra_bytes'] / GIB:.3f} GiB, flagged {r['flagged']}"
                    )
                except (WorkerError, subprocess.CalledProcessError, KeyError) as exc:
                    sample.error = f"{type(exc).__name__}: {exc}"
                    log(f"[red]{LABELS[side]} failed:[/red] {sample.error}")
                got.append(sample)
            samples += got
            rows_out.append(summarise(side, rows, got, ctx.expected))
    return rows_out, samples


def stream_figures(args: argparse.Namespace, ctx: Context) -> dict[str, Any] | None:
    rows = 100_000 if 100_000 in args.rows else min(args.rows)
    reference, current = prepare_inputs(rows, args.seed)
    spec = {
        "op": "stream",
        "reference": str(reference),
        "current": str(current),
        "rows": STREAM_ROWS,
        "windows": STREAM_WINDOWS,
        "minute_rows": args.minute_rows,
    }
    log(f"streaming figures (reference of {rows:,} rows)")
    try:
        result: dict[str, Any] = run_json(
            [sys.executable, str(THIS), "--worker", json.dumps(spec)],
            env=ctx.loopml_env,
            timeout=TIMEOUT_S,
        )
    except WorkerError as exc:
        log(f"[red]streaming figures failed:[/red] {exc}")
        return None
    result["reference_rows"] = rows
    return result


# -- reporting ---------------------------------------------------------------------------------


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:,.2f} s"


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / GIB:.3f} GiB"


def _flags(row: Row) -> str:
    if not row.repeats:
        return "failed"
    if not row.false_alarms and not row.missed:
        return f"exactly the {len(row.flagged)} shifted"
    parts = []
    if row.false_alarms:
        parts.append(f"{len(row.false_alarms)} false alarms ({', '.join(row.false_alarms)})")
    if row.missed:
        parts.append(f"missed {', '.join(row.missed)}")
    return "; ".join(parts)


def results_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    header = [
        "rows",
        "tool",
        "wall",
        "CPU",
        "CPU vs loopml",
        "memory (peak extra)",
        "flagged",
        "target",
        "met?",
    ]
    out = []
    for row in rows:
        base = next((r for r in rows if r.rows == row.rows and r.side == "loopml"), None)
        ratio = "-"
        if base is not None and base.cpu_s and row.cpu_s is not None and row.side != "loopml":
            ratio = f"{row.cpu_s / base.cpu_s:,.1f}x"
        target, met = "", ""
        if row.side == "loopml" and row.rows == TARGET_ROWS:
            evidently = next(
                (r for r in rows if r.rows == row.rows and r.side == "evidently"), None
            )
            checks = []
            if row.wall_s is not None:
                checks.append(row.wall_s <= TARGET_WALL_S)
            if row.extra_bytes is not None:
                checks.append(row.extra_bytes <= TARGET_MEMORY_BYTES)
            checks.append(not row.false_alarms and not row.missed and bool(row.repeats))
            target = "<=3 s wall, <=0.3 GiB, exactly the shifted"
            if evidently is not None and evidently.cpu_s and row.cpu_s:
                target += ", >=50x less CPU than Evidently"
                checks.append(evidently.cpu_s / row.cpu_s >= TARGET_CPU_RATIO)
            met = "yes" if all(checks) else "NO"
        out.append(
            [
                f"{row.rows:,}",
                LABELS[row.side],
                _secs(row.wall_s),
                _secs(row.cpu_s),
                ratio,
                _gib(row.extra_bytes),
                _flags(row),
                target,
                met,
            ]
        )
    return header, out


def stream_table(figures: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["streaming (loopml)", "value", "target", "met?"]

    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    fold = figures["fold_numpy_ms"]
    rows = [
        [
            f"fold a {figures['fold_rows']:,}-row window into its sketch (dict of numpy arrays)",
            f"{fold:.2f} ms",
            f"<={TARGET_FOLD_MS:g} ms",
            met(fold <= TARGET_FOLD_MS),
        ],
        [
            f"fold a {figures['fold_rows']:,}-row window (pyarrow Table)",
            f"{figures['fold_arrow_ms']:.2f} ms",
            "-",
            "-",
        ],
        [
            "state of a window (to_dict as JSON, 20 columns)",
            f"{figures['state_bytes']:,} B",
            f"<={TARGET_STATE_BYTES // 1024} KB",
            met(figures["state_bytes"] <= TARGET_STATE_BYTES),
        ],
        [
            f"merge {figures['windows']:,} one-minute windows ({figures['minute_rows']} rows each) "
            "and evaluate",
            f"{figures['merge_evaluate_ms']:.1f} ms (merge {figures['merge_ms']:.1f}, "
            f"evaluate {figures['evaluate_ms']:.1f})",
            f"<{TARGET_MERGE_MS:g} ms",
            met(figures["merge_evaluate_ms"] < TARGET_MERGE_MS),
        ],
    ]
    if "report_bytes" in figures:
        rows.append(
            [
                f"HTML report over {figures['report_windows']:,} stored windows, "
                f"{figures['report_features']} columns (built in {figures['report_ms']:.0f} ms)",
                f"{figures['report_bytes']:,} B",
                f"<{TARGET_REPORT_BYTES // 1_000_000} MB",
                met(figures["report_bytes"] < TARGET_REPORT_BYTES),
            ]
        )
    return header, rows


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(header: list[str], rows: list[list[str]], title: str, markdown: bool) -> None:
    print(title + "\n")
    try:
        if markdown:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_markdown(header, rows) + "\n")
        return
    table = Table()
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 220).print(table)


# -- main --------------------------------------------------------------------------------------


def _comma_list(parser: argparse.ArgumentParser, values: list[str] | None) -> list[str]:
    if not values:
        return list(SIDES)
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in SIDES]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)} (choose from {', '.join(SIDES)})")
    return [s for s in SIDES if s in chosen]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="rows per table (repeatable)")
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 rows, no peers")
    parser.add_argument("--repeats", type=int, default=3, help="loopml and numpy: median of N")
    parser.add_argument("--peer-repeats", type=int, default=1, help="Evidently, NannyML: N")
    parser.add_argument(
        "--only", action="append", help=f"sides: a comma list of {', '.join(SIDES)}"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minute-rows", type=int, default=100, help="rows per one-minute window")
    parser.add_argument("--no-stream", action="store_true", help="skip the streaming figures")
    parser.add_argument("--evidently-version", default=EVIDENTLY_VERSION)
    parser.add_argument("--nannyml-version", default=NANNYML_VERSION)
    parser.add_argument("--no-snapshot", action="store_true", help="run loopml from src/")
    parser.add_argument("--markdown", action="store_true", help="markdown tables, not rich")
    parser.add_argument("--json", type=Path, default=WORK_DIR / "monitoring.json")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.peer_repeats < 1:
        parser.error("--repeats and --peer-repeats must be at least 1")
    args.only = _comma_list(parser, args.only)
    if args.quick:
        args.rows = args.rows or [10_000, 100_000]
        if not any("evidently" in v or "nannyml" in v for v in (args.only or [])):
            args.only = [s for s in args.only if s not in ("evidently", "nannyml")]
    args.rows = sorted(set(args.rows or [100_000, 1_000_000]))
    return args


def machine_info(worker: dict[str, Any]) -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": load,
        "loopml_git": git_state(),
        "worker": worker,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    loopml_env = {} if args.no_snapshot else snapshot_loopml(SNAPSHOT_DIR)
    worker = run_json(
        [sys.executable, str(THIS), "--worker", json.dumps({"op": "info"})],
        env=loopml_env,
        timeout=600,
    )
    if worker.get("loopml_error"):
        log(
            f"[red]cannot run:[/red] loopml.monitoring cannot be imported: {worker['loopml_error']}"
        )
        return 2
    peers: dict[str, Path] = {}
    versions = {"evidently": args.evidently_version, "nannyml": args.nannyml_version}
    for name in ("evidently", "nannyml"):
        if name in args.only:
            try:
                peers[name] = ensure_peer(name, versions[name])
            except (WorkerError, subprocess.CalledProcessError) as exc:
                log(f"[red]cannot install {name}:[/red] {exc}; leaving it out")
                args.only = [s for s in args.only if s != name]
    ctx = Context(loopml_env, peers, expected_flags())
    info = machine_info(worker)
    rows, samples = run_all(args, ctx)
    figures = None if args.no_stream or "loopml" not in args.only else stream_figures(args, ctx)

    peer_versions = {
        name: next((s.result.get("version") for s in samples if s.side == name and s.result), None)
        for name in ("evidently", "nannyml")
    }
    git = info["loopml_git"]
    title = (
        f"Monitoring benchmark: one drift check, reference and current of "
        f"{' and '.join(f'{r:,}' for r in args.rows)} rows (15 numeric + 5 categorical columns, "
        f"{len(ctx.expected)} shifted); median of {args.repeats} (peers: {args.peer_repeats})\n"
        f"loopml {worker.get('loopml')} (commit {git['commit']}"
        f"{', src/ modified' if git['src_dirty'] else ''}), "
        f"Evidently {peer_versions['evidently']}, NannyML {peer_versions['nannyml']}\n"
        f"{info['cpu']}, {info['cores']} CPUs, {info['ram_gib']} GiB RAM, Python {info['python']}, "
        f"load average at start {info['load_average_at_start']}"
    )
    print()
    header, body = results_table(rows)
    print_table(header, body, title, args.markdown)
    if figures is not None:
        header, body = stream_table(figures)
        print_table(header, body, "\nStreaming (loopml only)", args.markdown)
    problems = [f"{LABELS[r.side]} at {r.rows:,}: {e}" for r in rows for e in r.errors]
    for row in rows:
        if row.note:
            print(f"- {LABELS[row.side]} at {row.rows:,} rows: {row.note}")
    for problem in problems:
        print(f"- PROBLEM {problem}")
    report = {
        "benchmark": "monitoring",
        "rows": args.rows,
        "repeats": args.repeats,
        "peer_repeats": args.peer_repeats,
        "sides": args.only,
        "expected": ctx.expected,
        "seconds": time.perf_counter() - started,
        "machine": info,
        "results": [asdict(r) for r in rows],
        "samples": [asdict(s) for s in samples],
        "streaming": figures,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    log(f"raw measurements written to {args.json}")
    shutil.rmtree(SNAPSHOT_DIR, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(json.loads(sys.argv[2]))), flush=True)
        sys.exit(0)
    sys.exit(main())
