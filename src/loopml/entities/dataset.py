"""Datasets, their immutable versions and the runs that used them (lineage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Dataset", "DatasetInput", "DatasetKind", "DatasetVersionInfo"]


class DatasetKind(StrEnum):
    """What a dataset version holds: one table stored as Parquet, or a tree of files."""

    TABLE = "table"
    FILES = "files"


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named series of dataset versions, with the validation rules new versions must pass.

    ``rules`` is the JSON form of :class:`loopml.data.Rules` (``None`` when none are set);
    ``latest_version`` is ``None`` until the first version is added.
    """

    dataset_id: str
    name: str
    description: str
    creation_time: int
    last_update_time: int
    latest_version: int | None = None
    rules: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DatasetVersionInfo:
    """One immutable version of a dataset, as the metadata store records it.

    ``digest`` is the blob digest of the version's manifest (every file's path, digest and
    size), so two versions with the same content have the same digest. ``schema`` and
    ``profile`` are the JSON forms of :class:`loopml.data.Schema` and
    :class:`loopml.data.Profile` (tables only).
    """

    name: str
    version: int
    digest: str
    kind: DatasetKind
    num_files: int
    size: int
    creation_time: int
    num_rows: int | None = None
    schema: dict[str, Any] | None = field(default=None, compare=False)
    profile: dict[str, Any] | None = field(default=None, compare=False)
    source: str = ""
    description: str = ""

    @property
    def ref(self) -> str:
        """The reference that names this version, e.g. ``"customers@v3"``."""
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A run used a dataset version (``context``: ``"training"``, ``"evaluation"``, ...)."""

    run_id: str
    name: str
    version: int
    context: str
    time: int

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"
