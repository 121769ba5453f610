"""The data API: add, get, list, diff and validate dataset versions.

::

    ds = loopml.data.add("customers", "data/customers/")   # a folder, a file, or a table
    ds.version, ds.hash, ds.schema, ds.profile
    loopml.data.get("customers@v2").to_pandas()
    loopml.data.validate(df, rules="customers")

Every function takes an optional ``tracking_uri``; by default the store is the one
``loopml.set_tracking_uri`` / ``LOOPML_TRACKING_URI`` name (the embedded ``./.loopml``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.config import Settings
from loopml.data import _add
from loopml.data._add import AddStats, Progress, StagedVersion
from loopml.data._manifest import FileEntry, Manifest
from loopml.data._sources import is_archive
from loopml.data._statcache import StatCache
from loopml.data._tables import (
    is_table_file,
    is_table_object,
    read_table_file,
    require_pandas,
    to_arrow,
)
from loopml.entities import (
    Dataset,
    DatasetInput,
    DatasetKind,
    DatasetVersionInfo,
    ModelVersion,
)
from loopml.errors import DatasetNotFoundError, DataValidationError, InvalidArgumentError
from loopml.storage.paths import join_under, local_path
from loopml.storage.protocols import TrackingStore
from loopml.storage.refs import DatasetRef, parse_ref
from loopml.storage.uris import open_store
from loopml.storage.validation import validate_dataset_name

if TYPE_CHECKING:
    from loopml.data.profile import ColumnDelta, Profile, Schema, SchemaDiff
    from loopml.data.rules import Rules
    from loopml.data.validation import ValidationReport

# Schemas, profiles and rules need numpy and pyarrow; they are imported where a table is
# involved, so versioning a folder of files (and ``loopml data add`` on one) does not pay
# for them.

__all__ = [
    "AddStats",
    "DatasetDiff",
    "DatasetVersion",
    "add",
    "diff",
    "get",
    "list_datasets",
    "list_versions",
    "resolve",
    "set_rules",
    "validate",
]

Format = Literal["auto", "table", "files"]


def _store(tracking_uri: str | os.PathLike[str] | None) -> TrackingStore:
    return open_store(tracking_uri)


class DatasetVersion:
    """One immutable version of a dataset, with its files, schema and profile.

    Attributes mirror the stored record (``name``, ``version``, ``hash``, ``kind``,
    ``num_files``, ``size``, ``num_rows``); ``stats`` says what the add that returned this
    object did (``None`` when the version was looked up with :func:`get`).
    """

    def __init__(
        self,
        store: TrackingStore,
        info: DatasetVersionInfo,
        *,
        stats: AddStats | None = None,
        schema_diff: SchemaDiff | None = None,
    ) -> None:
        self._store = store
        self.info = info
        self.stats = stats
        #: how the schema differs from the previous version (set by :func:`add`)
        self.schema_diff = schema_diff

    name = property(lambda self: self.info.name)
    version = property(lambda self: self.info.version)
    hash = property(lambda self: self.info.digest)
    kind = property(lambda self: self.info.kind)
    num_files = property(lambda self: self.info.num_files)
    size = property(lambda self: self.info.size)
    num_rows = property(lambda self: self.info.num_rows)
    ref = property(lambda self: self.info.ref)

    def __repr__(self) -> str:
        rows = f", {self.num_rows:,} rows" if self.num_rows is not None else ""
        return (
            f"<DatasetVersion {self.ref} {self.kind.value}: {self.num_files:,} files, "
            f"{self.size:,} bytes{rows}, {self.hash[:19]}>"
        )

    @cached_property
    def schema(self) -> Schema | None:
        """The inferred schema (tables only)."""
        from loopml.data.profile import Schema

        return Schema.from_dict(self.info.schema) if self.info.schema else None

    @cached_property
    def profile(self) -> Profile | None:
        """Per-column statistics and mergeable histograms (tables only)."""
        from loopml.data.profile import Profile

        return Profile.from_dict(self.info.profile) if self.info.profile else None

    @cached_property
    def manifest(self) -> Manifest:
        """Every file of the version: path, digest and size (read from the blob store)."""
        return Manifest.from_bytes(self._store.blobs.read_bytes(self.hash), digest=self.hash)

    def files(self) -> list[FileEntry]:
        return list(self.manifest.files)

    def usages(self) -> list[DatasetInput]:
        """The runs that used this version (lineage)."""
        return self._store.list_dataset_usages(self.name, self.version)

    def models(self) -> list[ModelVersion]:
        """The registered model versions whose run used this version (lineage)."""
        return self._store.list_dataset_models(self.name, self.version)

    def materialize(
        self, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> Path:
        """Write the version's files into the folder ``dest`` (created if needed), each
        verified against its digest. Files of ``dest`` that are not in the version are left
        alone; those that are get replaced. Returns ``dest``."""
        folder = local_path(dest, field="dest")
        if folder.exists() and not folder.is_dir():
            raise InvalidArgumentError(
                f"The destination {str(folder)!r} exists and is not a folder.", field="dest"
            )
        folder.mkdir(parents=True, exist_ok=True)
        items = _targets(folder, self.manifest)
        total = sum(entry.size for entry in self.manifest)
        done = [0]

        def advance(size: int) -> None:
            done[0] += size
            if progress is not None:
                progress(done[0], total)

        self._store.blobs.get_files(items, progress=advance)
        return folder

    def path(self) -> Path:
        """A local folder holding the version's files, materialised once into the cache
        folder (``LOOPML_CACHE_DIR``) and reused; treat it as read-only. For a table, the
        Parquet file is ``path() / "data.parquet"``."""
        root = Path(Settings.from_env().resolved_cache_dir(), "datasets")
        final = root / self.hash.removeprefix("blake3:")
        if final.is_dir():
            return final
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
        try:
            self.materialize(staging)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():  # another process won the race only if final exists
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def to_arrow(self) -> Any:
        """The table as a pyarrow Table (tables, and file sets made only of Parquet files)."""
        import pyarrow.parquet as pq

        parquet = [e.path for e in self.manifest if e.path.lower().endswith((".parquet", ".pq"))]
        if not parquet or len(parquet) != len(self.manifest):
            raise InvalidArgumentError(
                f"{self.ref} holds {self.num_files} files that are not all Parquet; use "
                ".path() or .materialize() to get them as files.",
                field="ref",
            )
        root = self.path()
        if self.kind is DatasetKind.TABLE:
            return pq.read_table(root / parquet[0])
        import pyarrow as pa

        return pa.concat_tables(
            [pq.read_table(root / p) for p in parquet], promote_options="default"
        )

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (needs ``loopml[pandas]``)."""
        require_pandas("DatasetVersion.to_pandas()")
        return self.to_arrow().to_pandas()


def _targets(folder: Path, manifest: Manifest) -> list[tuple[str, str]]:
    """``(digest, local path)`` for every file, each path checked to stay inside ``folder``.

    Manifest paths are already validated (no ``..``, not absolute); what could still lead
    outside is a symbolic link among the folders of ``folder``. So the real path of each
    distinct parent folder is checked once with :func:`join_under` (not once per file); the
    file itself is replaced by a rename, which never follows a link.
    """
    root = os.path.realpath(folder)
    checked: dict[str, str] = {}
    items = []
    for entry in manifest:
        parent, _, name = entry.path.rpartition("/")
        base = checked.get(parent)
        if base is None:
            base = checked[parent] = join_under(root, parent)
        items.append((entry.digest, os.path.join(base, name)))
    return items


# --------------------------------------------------------------------------------- add


def add(
    name: str,
    source: Any,
    *,
    description: str = "",
    rules: Rules | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    format: Format = "auto",
    unpack: bool = False,
    progress: Progress | None = None,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> DatasetVersion:
    """Add a new version of the dataset ``name`` (created on first use) and return it.

    Args:
        name: The dataset's name: letters, digits, ``.``, ``_``, ``-``.
        source: A folder (its files keep their layout), a file, a pandas DataFrame or a
            pyarrow Table. Tables, and ``.parquet``/``.csv``/``.tsv`` files with
            ``format="auto"``, are stored as Parquet with a schema and a profile.
        description: A note kept with the version.
        rules: Validation rules for the table (a :class:`Rules`, its dict form, YAML text or
            a YAML/JSON file). They are checked before anything is stored and, if the table
            passes, attached to the dataset so that later adds are checked too. Without
            ``rules`` the dataset's attached rules (if any) are checked.
        format: ``"table"`` or ``"files"`` to override what ``"auto"`` decides.
        unpack: Store the members of a tar or zip archive as the version's files.
        progress: Called as ``progress(bytes_done, bytes_total)`` while files are stored.

    Returns:
        The new version, or the latest one if its content is identical (then
        ``stats.created`` is false and nothing new is recorded).

    Raises:
        DataValidationError: the table breaks the rules (``.report`` lists every failure).
        InvalidArgumentError: a bad name, source or option (the message names it).
    """
    name = validate_dataset_name(name)
    if format not in ("auto", "table", "files"):
        raise InvalidArgumentError(
            f"format must be 'auto', 'table' or 'files'. Got {format!r}.", field="format"
        )
    store = _store(tracking_uri)
    settings = Settings.from_env()
    previous = _latest(store, name)
    new_rules = _load_rules(rules) if rules is not None else None
    staged = _stage(store, name, source, new_rules, format, unpack, progress, previous, settings)
    schema = profile = None
    if staged.table is not None:
        from loopml.data.profile import describe

        schema, profile = describe(staged.table)
    info, created = store.create_dataset_version(
        name,
        digest=staged.manifest_ref.digest,
        kind=staged.manifest.kind,
        num_files=len(staged.manifest),
        size=staged.manifest.size,
        num_rows=staged.num_rows,
        schema=schema.to_dict() if schema else None,
        profile=profile.to_dict() if profile else None,
        source=_describe_source(source),
        description=description,
    )
    if new_rules is not None:
        store.set_dataset_rules(name, new_rules.to_dict())
    if staged.cache_rows:
        cache = StatCache(settings.resolved_cache_dir(), store.blobs.uri)
        cache.record(staged.cache_rows)
        cache.close()
    staged.stats.created = created
    schema_diff = None
    if created and previous is not None and previous.schema and schema is not None:
        schema_diff = type(schema).from_dict(previous.schema).diff(schema)
    return DatasetVersion(store, info, stats=staged.stats, schema_diff=schema_diff)


def _latest(store: TrackingStore, name: str) -> DatasetVersionInfo | None:
    try:
        return store.get_dataset_version(name)
    except DatasetNotFoundError:
        return None


def _stage(
    store: TrackingStore,
    name: str,
    source: Any,
    rules: Rules | None,
    format: Format,
    unpack: bool,
    progress: Progress | None,
    previous: DatasetVersionInfo | None,
    settings: Settings,
) -> StagedVersion:
    blobs = store.blobs
    scratch = os.path.join(settings.resolved_cache_dir(), "tmp")
    if is_table_object(source):
        if format == "files":
            raise InvalidArgumentError("A table object cannot be added as files.", field="format")
        table = to_arrow(source)
        _check_rules(store, name, table, rules)
        return _add.stage_table(
            blobs, table, parquet_source=None, scratch=scratch, progress=progress
        )
    path = os.path.abspath(local_path(source, field="source"))
    if not os.path.exists(path):
        raise InvalidArgumentError(f"No such file or folder: {path!r}.", field="source")
    if unpack:
        if not (os.path.isfile(path) and is_archive(path)):
            raise InvalidArgumentError(
                f"unpack=True needs a .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz or .zip file. "
                f"Got {path!r}.",
                field="unpack",
            )
        _no_rules_for_files(store, name, rules)
        return _add.stage_archive(
            blobs, path, max_bytes=settings.max_archive_bytes, progress=progress
        )
    as_table = format == "table" or (
        format == "auto" and os.path.isfile(path) and is_table_file(path)
    )
    if as_table:
        if not (os.path.isfile(path) and is_table_file(path)):
            raise InvalidArgumentError(
                f"format='table' needs a .parquet, .csv or .tsv file. Got {path!r}.",
                field="format",
            )
        table = read_table_file(path)
        _check_rules(store, name, table, rules)
        return _add.stage_table(
            blobs, table, parquet_source=path, scratch=scratch, progress=progress
        )
    _no_rules_for_files(store, name, rules)
    cache = StatCache(settings.resolved_cache_dir(), blobs.uri)
    try:
        return _add.stage_files(blobs, path, cache=cache, progress=progress)
    finally:
        cache.close()


def _describe_source(source: Any) -> str:
    if is_table_object(source):
        return f"<{type(source).__module__.split('.')[0]}.{type(source).__name__}>"
    return str(os.path.abspath(os.fspath(source)))


def _load_rules(rules: Any) -> Rules:
    from loopml.data.rules import Rules

    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, Mapping):
        return Rules.from_dict(rules)
    if isinstance(rules, os.PathLike) or (
        isinstance(rules, str) and rules.lower().endswith((".yaml", ".yml", ".json"))
    ):
        return Rules.from_file(rules)
    if isinstance(rules, str):
        return Rules.from_yaml(rules)
    raise InvalidArgumentError(
        "rules must be Rules, a mapping, YAML text or a .yaml/.json file. "
        f"Got {type(rules).__name__}.",
        field="rules",
    )


def _stored_rules(store: TrackingStore, name: str) -> Rules | None:
    try:
        dataset = store.get_dataset(name)
    except DatasetNotFoundError:
        return None
    return _load_rules(dataset.rules) if dataset.rules else None


def _check_rules(store: TrackingStore, name: str, table: Any, rules: Rules | None) -> None:
    rules = rules if rules is not None else _stored_rules(store, name)
    if rules is None:
        return
    from loopml.data.validation import validate as validate_rules

    report = validate_rules(table, rules)
    if not report.passed:
        raise DataValidationError(
            f"The new version of {name!r} was refused: it breaks the dataset's rules.\n"
            + report.summary(),
            report=report,
            name=name,
        )


def _no_rules_for_files(store: TrackingStore, name: str, rules: Rules | None) -> None:
    if rules is not None:
        raise InvalidArgumentError(
            "Validation rules apply to tables; this source is a set of files.", field="rules"
        )


# --------------------------------------------------------------------------------- read


def get(ref: str, *, tracking_uri: str | os.PathLike[str] | None = None) -> DatasetVersion:
    """The version named by ``ref``: ``"customers"`` (latest), ``"customers@v2"``."""
    parsed = parse_ref(ref)
    store = _store(tracking_uri)
    return DatasetVersion(store, store.get_dataset_version(parsed.name, parsed.version))


def list_datasets(*, tracking_uri: str | os.PathLike[str] | None = None) -> list[Dataset]:
    """Every dataset, by name."""
    return _store(tracking_uri).list_datasets()


def list_versions(
    name: str, *, tracking_uri: str | os.PathLike[str] | None = None
) -> list[DatasetVersion]:
    """Every version of ``name``, newest first."""
    store = _store(tracking_uri)
    return [DatasetVersion(store, info) for info in store.list_dataset_versions(name)]


def set_rules(
    name: str,
    rules: Rules | Mapping[str, Any] | str | os.PathLike[str] | None,
    *,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Attach rules to the dataset ``name`` (created if needed); ``None`` removes them."""
    name = validate_dataset_name(name)
    store = _store(tracking_uri)
    if rules is None:
        return store.set_dataset_rules(name, None)
    clean = _load_rules(rules).to_dict()
    try:
        return store.set_dataset_rules(name, clean)
    except DatasetNotFoundError:
        store.create_dataset(name)
        return store.set_dataset_rules(name, clean)


def validate(
    data: Any,
    rules: Rules | Mapping[str, Any] | str | os.PathLike[str],
    *,
    strict: bool = False,
    max_examples: int = 5,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Check a table against rules and report every failure.

    ``data`` is a DataFrame, an Arrow table, a ``.parquet``/``.csv`` path or a dataset
    version. ``rules`` is a :class:`Rules`, its dict form, a YAML/JSON file, or the name of a
    dataset whose attached rules apply. ``strict=True`` raises
    :class:`~loopml.errors.DataValidationError` when a rule fails.
    """
    table = _as_table(data)
    if isinstance(rules, str) and _looks_like_dataset_name(rules):
        store = _store(tracking_uri)
        attached = _stored_rules(store, store.get_dataset(rules).name)
        if attached is None:
            raise InvalidArgumentError(
                f"The dataset {rules!r} has no validation rules attached.", field="rules"
            )
        resolved = attached
    else:
        resolved = _load_rules(rules)
    from loopml.data.validation import validate as validate_rules

    return validate_rules(table, resolved, strict=strict, max_examples=max_examples)


def _looks_like_dataset_name(text: str) -> bool:
    try:
        validate_dataset_name(text)
    except InvalidArgumentError:
        return False
    return not text.lower().endswith((".yaml", ".yml", ".json"))


def _as_table(data: Any) -> Any:
    if isinstance(data, DatasetVersion):
        return data.to_arrow()
    if is_table_object(data):
        return to_arrow(data)
    path = os.fspath(local_path(data, field="data"))
    if not is_table_file(path):
        raise InvalidArgumentError(
            f"data must be a DataFrame, an Arrow table, a dataset version or a .parquet/.csv "
            f"file. Got {path!r}.",
            field="data",
        )
    return read_table_file(path)


# --------------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class DatasetDiff:
    """How version ``new`` differs from version ``old``."""

    old: str
    new: str
    added: tuple[FileEntry, ...]
    removed: tuple[FileEntry, ...]
    changed: tuple[tuple[FileEntry, FileEntry], ...]
    unchanged: int
    rows: tuple[int | None, int | None]
    schema: SchemaDiff | None
    columns: tuple[ColumnDelta, ...]

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        def entry(e: FileEntry) -> dict[str, Any]:
            return {"path": e.path, "digest": e.digest, "size": e.size}

        return {
            "old": self.old,
            "new": self.new,
            "identical": self.identical,
            "added": [entry(e) for e in self.added],
            "removed": [entry(e) for e in self.removed],
            "changed": [
                {
                    "path": a.path,
                    "old_size": a.size,
                    "new_size": b.size,
                    "old_digest": a.digest,
                    "new_digest": b.digest,
                }
                for a, b in self.changed
            ],
            "unchanged": self.unchanged,
            "rows": {"old": self.rows[0], "new": self.rows[1]},
            "schema": self.schema.to_dict() if self.schema else None,
            "columns": [delta.to_dict() for delta in self.columns],
        }


def diff(
    old: str | DatasetVersion,
    new: str | DatasetVersion,
    *,
    tracking_uri: str | os.PathLike[str] | None = None,
) -> DatasetDiff:
    """Files added, removed and changed; for tables also rows, schema and column profiles."""
    a = old if isinstance(old, DatasetVersion) else get(old, tracking_uri=tracking_uri)
    b = new if isinstance(new, DatasetVersion) else get(new, tracking_uri=tracking_uri)
    before = {e.path: e for e in a.manifest}
    after = {e.path: e for e in b.manifest}
    changed = tuple(
        (before[p], after[p])
        for p in sorted(before.keys() & after.keys())
        if before[p].digest != after[p].digest
    )
    schema = a.schema.diff(b.schema) if a.schema and b.schema else None
    columns = tuple(a.profile.diff(b.profile)) if a.profile and b.profile else ()
    return DatasetDiff(
        old=a.ref,
        new=b.ref,
        added=tuple(after[p] for p in sorted(after.keys() - before.keys())),
        removed=tuple(before[p] for p in sorted(before.keys() - after.keys())),
        changed=changed,
        unchanged=len(before.keys() & after.keys()) - len(changed),
        rows=(a.num_rows, b.num_rows),
        schema=schema,
        columns=columns,
    )


def resolve(
    ref: str | DatasetVersion, *, tracking_uri: str | os.PathLike[str] | None = None
) -> DatasetRef:
    """The exact ``(name, version)`` of a reference or version (``latest`` resolved)."""
    if isinstance(ref, DatasetVersion):
        return DatasetRef(ref.name, ref.version)
    version = get(ref, tracking_uri=tracking_uri)
    return DatasetRef(version.name, version.version)
