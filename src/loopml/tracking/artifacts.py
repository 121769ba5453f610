"""Turning in-memory objects (text, dicts, figures) and folders into run artifacts."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from loopml.errors import InvalidArgumentError, MissingDependencyError
from loopml.storage.paths import local_path, validate_artifact_path

__all__ = ["artifact_file_path", "iter_folder", "temp_file_for", "write_dict", "write_figure"]


def artifact_file_path(local_name: str, artifact_path: str | None) -> str:
    """The logical path of a file logged under the folder ``artifact_path``."""
    folder = validate_artifact_path(artifact_path or "", field="artifact_path", allow_empty=True)
    name = validate_artifact_path(local_name, field="file name")
    return f"{folder}/{name}" if folder else name


def iter_folder(local_dir: str | os.PathLike[str]) -> Iterator[tuple[Path, str]]:
    """Every regular file below ``local_dir`` with its relative ``/``-separated path."""
    root = local_path(local_dir, field="local_dir")
    if not root.is_dir():
        raise InvalidArgumentError(
            f"The local folder to log does not exist or is not a folder: {str(root)!r}.",
            field="local_dir",
        )
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(current, name)
            if path.is_file():
                yield path, PurePosixPath(path.relative_to(root)).as_posix()


@contextmanager
def temp_file_for(artifact_file: str) -> Iterator[Path]:
    """A temporary local file with the same base name as the artifact being logged."""
    name = validate_artifact_path(artifact_file, field="artifact_file").rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="loopml-") as folder:
        yield Path(folder, name)


def write_dict(data: Any, path: Path) -> None:
    """JSON by default; YAML when the file name ends in .yaml/.yml (needs PyYAML)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise MissingDependencyError(
                "Logging a dict as YAML needs PyYAML (pip install pyyaml); "
                "or use a .json file name.",
                package="pyyaml",
            ) from None
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"The dictionary cannot be written as JSON: {exc}.", field="dictionary"
        ) from None
    path.write_text(text, "utf-8")


def write_figure(figure: Any, path: Path) -> None:
    """Save a matplotlib figure (a ``savefig`` method is all that is needed)."""
    savefig = getattr(figure, "savefig", None)
    if savefig is None:
        raise InvalidArgumentError(
            f"The figure must be a matplotlib Figure (with savefig). Got {type(figure).__name__}.",
            field="figure",
        )
    savefig(path)
