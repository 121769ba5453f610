"""The manifest of a dataset version: every file's path, digest and size.

A manifest is stored as a blob of canonical JSON (sorted paths, no spaces), so its digest is
a content hash of the whole version: the same files under the same paths give the same
digest, whatever dataset or machine they came from. Paths are relative, ``/``-separated and
checked by :func:`loopml.storage.paths.validate_artifact_path` both when a manifest is built
and when one is read back, so a stored manifest can never point a materialisation outside
its target folder.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from loopml.entities import DatasetKind
from loopml.errors import IntegrityError, InvalidArgumentError
from loopml.storage.blobs import validate_digest
from loopml.storage.paths import validate_artifact_path

__all__ = ["FORMAT", "FileEntry", "Manifest"]

FORMAT = 1
"""The manifest layout version written into every manifest."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a dataset version."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The files of a dataset version, sorted by path (no two entries share a path)."""

    kind: DatasetKind
    files: tuple[FileEntry, ...]

    @classmethod
    def build(
        cls, kind: DatasetKind, entries: Iterable[FileEntry], *, checked: bool = False
    ) -> Manifest:
        """Sort and check ``entries``; ``checked=True`` skips the path check (the caller
        already ran :func:`validate_artifact_path` on every path)."""
        files = sorted(entries, key=lambda entry: entry.path)
        for before, after in itertools.pairwise(files):
            if before.path == after.path:
                raise InvalidArgumentError(
                    f"Two files have the same path {before.path!r}.", field="path"
                )
        if not checked:
            for entry in files:
                validate_artifact_path(entry.path, field="path")
        return cls(kind, tuple(files))

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def digests(self) -> set[str]:
        return {entry.digest for entry in self.files}

    def to_bytes(self) -> bytes:
        """Canonical JSON: equal manifests always give equal bytes."""
        body = {
            "format": FORMAT,
            "kind": self.kind.value,
            "files": [[entry.path, entry.digest, entry.size] for entry in self.files],
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, digest: str = "") -> Manifest:
        """Parse and check a stored manifest.

        Raises:
            IntegrityError: the bytes are not a manifest this version of loopml can read.
        """
        try:
            body: Any = json.loads(data.decode("utf-8"))
            if body.get("format") != FORMAT:
                raise ValueError(f"unknown format {body.get('format')!r}")
            kind = DatasetKind(body["kind"])
            entries = [_entry(item) for item in body["files"]]
            return cls.build(kind, entries, checked=True)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidArgumentError) as exc:
            raise IntegrityError(
                f"The manifest {digest or '(unsaved)'} is not a valid dataset manifest: {exc}",
                digest=digest,
            ) from None


def _entry(item: Any) -> FileEntry:
    path, digest, size = item
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"bad size {size!r} for {path!r}")
    return FileEntry(validate_artifact_path(path, field="path"), validate_digest(digest), size)
