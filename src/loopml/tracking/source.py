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
    """Commit and dirty flag of the git checkout holding ``folder`` (cached per process).

    One ``git status`` call gives both: ``--porcelain=v2 --branch`` prints the commit on a
    ``# branch.oid`` line and one line per changed tracked file."""
    try:
        done = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    if done.returncode != 0:
        return None, None
    commit = None
    dirty = False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = oid if oid != "(initial)" else None
        elif line and not line.startswith("#"):
            dirty = True
    return commit, (dirty if commit is not None else None)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@functools.cache
def _version_of(module_name: str, dist: str) -> str | None:
    module = sys.modules.get(module_name)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):  # instant, unlike reading the package metadata
        return version
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _packages() -> dict[str, str]:
    """Versions of loopml and of the tracked libraries imported so far."""
    found = {}
    for module_name, dist in _TRACKED.items():
        if module_name == "loopml" or module_name in sys.modules:
            version = _version_of(module_name, dist)
            if version is not None:
                found[dist] = version
    return found


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


def collect_source_info() -> SourceInfo:
    """Describe the current process: who, where, which code and which library versions."""
    entry = _entry_point()
    folder = _code_folder(entry)
    commit, dirty = _git_info(folder)
    return SourceInfo(
        user=_user(),
        host=socket.gethostname(),
        entry_point=entry,
        git_commit=commit,
        git_dirty=dirty,
        python_version=platform.python_version(),
        packages=_packages(),
    )
