"""Helpers shared by the benchmark scripts: progress output, medians, virtualenvs, workers.

Only the standard library (plus ``rich`` when it is there) is used, so the helpers run in any
interpreter.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "WORK_DIR",
    "WorkerError",
    "cpu_model",
    "ensure_distribution",
    "ensure_venv",
    "git_state",
    "log",
    "median",
    "ram_gib",
    "run_json",
    "snapshot_loopml",
    "venv_python",
]

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
VENVS_DIR = BENCH_DIR / ".venvs"

try:
    from rich.console import Console

    _console: Console | None = Console(stderr=True, highlight=False, log_path=False)
except ImportError:  # pragma: no cover - rich is a loopml dependency
    _console = None


def log(message: str) -> None:
    """Progress to stderr, so stdout keeps only the results."""
    if _console is not None:
        _console.log(message)
    else:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


class WorkerError(RuntimeError):
    """A worker subprocess failed or printed no JSON result."""


def run_json(
    command: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Any:
    """Run ``command`` and parse the JSON document on the last line of its stdout.

    The worker's stderr passes through to ours (warnings, progress), so nothing is hidden.
    """
    full_env = {**os.environ, **(env or {})}
    try:
        done = subprocess.run(
            list(command),
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkerError(f"{' '.join(command[:3])} … timed out after {timeout}s") from exc
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = "\n".join(lines[-5:])
        raise WorkerError(f"worker exited with {done.returncode}; last output:\n{tail}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise WorkerError(f"worker printed no JSON on its last line: {lines[-1][:200]!r}") from exc


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _installed_version(python: Path, distribution: str) -> str | None:
    code = (
        "import importlib.metadata as m, sys\n"
        f"try: print(m.version({distribution!r}))\n"
        "except m.PackageNotFoundError: sys.exit(1)\n"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_venv(name: str, distribution: str, version: str) -> Path:
    """The python of ``benchmarks/.venvs/<name>`` with ``distribution==version`` installed.

    The virtualenv is created with ``python3 -m venv`` the first time and reused afterwards;
    a different installed version is replaced with the pinned one.
    """
    venv = VENVS_DIR / name
    python = venv_python(venv)
    if not python.exists():
        log(f"creating the virtualenv {venv}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = _installed_version(python, distribution)
    if installed != version:
        log(f"installing {distribution}=={version} into {venv} (was {installed or 'absent'})")
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"{distribution}=={version}"],
            check=False,
        )
        if done.returncode != 0:
            raise WorkerError(
                f"pip could not install {distribution}=={version} into {venv}; "
                "pick another release with --mlflow-version"
            )
    return python


def cpu_model() -> str:
    """The CPU's model name (``lscpu``), else whatever :mod:`platform` knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def ram_gib() -> float | None:
    """Total memory in GiB (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def git_state() -> dict[str, Any]:
    """The loopml commit measured, and whether src/ had uncommitted changes."""
    root = BENCH_DIR.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "src_dirty": bool(git("status", "--porcelain", "--", "src")),
    }


def snapshot_loopml(target: Path) -> dict[str, str]:
    """Copy src/loopml to ``target/loopml`` (bytecode compiled); the env that puts it first.

    Returns ``{"PYTHONPATH": ...}`` for the processes that run loopml (its console script
    included), so edits to the tree during a long run do not mix versions; ``{}`` when there
    is no src/loopml to copy.
    """
    source = BENCH_DIR.parent / "src" / "loopml"
    if not source.is_dir():
        return {}
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target / "loopml", ignore=shutil.ignore_patterns("__pycache__"))
    # Compiled now, so the first measured process does not pay for writing the bytecode.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(target / "loopml")],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    paths = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def ensure_distribution(python: Path, distribution: str, version: str) -> None:
    """``distribution==version`` in the interpreter ``python`` (a virtualenv's), installed with
    pip when it is absent or another version; WorkerError when pip cannot."""
    installed = _installed_version(python, distribution)
    if installed == version:
        return
    log(f"installing {distribution}=={version} for {python} (was {installed or 'absent'})")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{distribution}=={version}"],
        check=False,
    )
    if done.returncode != 0:
        raise WorkerError(f"pip could not install {distribution}=={version} for {python}")
