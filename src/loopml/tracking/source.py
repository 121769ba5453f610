"""What a run records about the code that produced it (user, host, git commit, versions)."""

from __future__ import annotations

import functools
import getpass
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from dataclasses import replace

from loopml.entities import SourceInfo

__all__ = ["collect_source_info"]

#: distributions whose versions are recorded when the matching module is imported
_TRACKED = {
    "loopml": "loopml",
    "numpy": "numpy",
    "pandas": "pandas",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "torch": "torch",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "tensorflow": "tensorflow",
    "onnx": "onnx",
    "pyarrow": "pyarrow",
}


def _entry_point() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else None)
    if not path or path in ("-c", "-m"):
        return "<interactive>"
    return os.path.abspath(path)


@functools.cache
def _git_info(folder: str) -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the git checkout holding ``folder`` (cached per process)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", folder, *args], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@functools.cache
def _versions(dists: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for dist in dists:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _packages() -> dict[str, str]:
    """Versions of loopml and of the tracked libraries imported so far (cached per set)."""
    dists = tuple(d for m, d in _TRACKED.items() if m == "loopml" or m in sys.modules)
    return dict(_versions(dists))


def _code_folder(entry: str | None) -> str:
    """The folder whose git checkout describes the code: the script's own folder, or the
    working directory for interactive use and for installed commands (``bin/loopml``, whose
    folder belongs to the Python installation, not to the user's project)."""
    if not entry or entry == "<interactive>":
        return os.getcwd()
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix)}
    real = os.path.realpath(entry)
    if any(real.startswith(prefix + os.sep) for prefix in installed):
        return os.getcwd()
    return os.path.dirname(entry)


def quick_source_info() -> SourceInfo:
    """The part of the source info that costs microseconds: user, host, entry point, Python."""
    return SourceInfo(
        user=_user(),
        host=socket.gethostname(),
        entry_point=_entry_point(),
        python_version=platform.python_version(),
    )


def complete_source_info(quick: SourceInfo) -> SourceInfo:
    """Add what takes milliseconds (git runs as a subprocess; package versions are read
    from their metadata), so callers can do it off their critical path."""
    commit, dirty = _git_info(_code_folder(quick.entry_point))
    return replace(quick, git_commit=commit, git_dirty=dirty, packages=_packages())


def collect_source_info() -> SourceInfo:
    """Describe the current process: who, where, which code and which library versions."""
    return complete_source_info(quick_source_info())
