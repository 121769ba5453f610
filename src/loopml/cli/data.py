"""``loopml data``: version datasets, inspect and compare versions, validate tables.

Every command wraps :mod:`loopml.data` and renders what it returns. ``loopml.data`` (numpy,
pyarrow) is imported inside the commands, so ``loopml --help`` stays fast.

Exit codes follow :mod:`loopml.cli._common`: 1 when data breaks validation rules (an
``add`` refused, or ``loopml data validate`` found failures, like a test runner or a linter
that found problems, so that it can gate a pipeline); 2 for bad input; 3 for no such dataset
or version.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli._common import (
    EXIT_ERROR,
    JsonFlag,
    get_state,
    message,
    print_json,
    print_table,
)
from loopml.cli._format import (
    cell,
    format_ago,
    format_duration,
    format_number,
    format_size,
    format_time,
)
from loopml.cli._format import key_value_table as _key_value_table
from loopml.cli._format import print_parts as _print_parts
from loopml.cli._format import reflow as _reflow
from loopml.cli._format import titled_table as _titled

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import RenderableType
    from rich.progress import Progress
    from rich.table import Table

    from loopml.data import (
        AddStats,
        DatasetDiff,
        DatasetVersion,
        FileEntry,
        Profile,
        Schema,
        SchemaDiff,
        ValidationReport,
    )
    from loopml.entities import Dataset, DatasetInput, ModelVersion

app = typer.Typer(
    help="Version datasets (folders, files, tables), inspect and compare versions, validate "
    "tables against rules.",
    no_args_is_help=True,
)

#: ``loopml data validate`` exits with this code when the table breaks a rule
EXIT_RULES_FAILED = EXIT_ERROR

#: a progress bar appears once the bytes to store or fetch pass this many
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
#: ... or the files to fetch pass this many
PROGRESS_MIN_FILES = 500
#: ... or, for an add, once storing has taken this long (many small files)
PROGRESS_AFTER_S = 1.0
#: `data show` lists this many files unless --files
SHOWN_FILES = 20
#: `data diff` lists this many added / removed / changed files per table
SHOWN_DIFF_FILES = 50
#: top categories or values shown in one table cell, and the width they wrap at
SHOWN_VALUES = 3
TOP_VALUES_WIDTH = 28
_WRAPPING = ("top categories", "top values")

Name = Annotated[
    str,
    typer.Argument(
        help="The dataset's name (letters, digits, '.', '_', '-').",
        metavar="NAME",
        show_default=False,
    ),
]
Ref = Annotated[
    str,
    typer.Argument(
        help="A dataset version: NAME (the latest), NAME@v3 or NAME@latest.",
        metavar="NAME[@vN]",
        show_default=False,
    ),
]


class AddFormat(StrEnum):
    """How `data add` stores its source."""

    auto = "auto"
    table = "table"
    files = "files"


def _command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command(name)`` with the docstring reflowed into the help text."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        return app.command(name, help=_reflow(func.__doc__))(func)

    return register


def _uri(ctx: typer.Context) -> str | None:
    """The tracking URI the root ``--tracking-uri`` option names (None: the defaults apply,
    exactly as for :func:`loopml.cli._common.get_client`)."""
    return get_state(ctx).tracking_uri


# -- rendering helpers -------------------------------------------------------------------------


def _rows(count: int | None) -> str | None:
    return None if count is None else f"{count:,}"


def _num(value: float | None, digits: int = 4) -> str | None:
    return None if value is None else format_number(float(value), digits)


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value:.1%}"


def _epoch(seconds: float | None) -> str | None:
    """A datetime column's profile value (float seconds since the epoch, UTC) as ISO text."""
    from datetime import UTC, datetime

    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None).isoformat()
    except (OverflowError, OSError, ValueError):
        return format_number(seconds)


def _schema_value(value: Any) -> str | None:
    """A schema min or max: a number, or an ISO string for datetime columns."""
    if value is None:
        return None
    if isinstance(value, float | int) and not isinstance(value, bool):
        return format_number(float(value), 6)
    return str(value)


def _file_table(title: str, entries: Sequence[FileEntry]) -> Table:
    table = _titled(title)
    table.add_column("path", style="bold")
    table.add_column("size", justify="right", no_wrap=True)
    for entry in entries:
        table.add_row(cell(entry.path), cell(format_size(entry.size)))
    return table


# -- progress ----------------------------------------------------------------------------------


class _ProgressBar:
    """A ``progress(bytes_done, bytes_total)`` callback that draws a rich bar on stderr.

    The bar only appears in a terminal, and only when the job is big: ``bytes_total`` over
    PROGRESS_MIN_BYTES, ``big`` set by the caller (e.g. many files), or the job running past
    PROGRESS_AFTER_S. Piped or redirected, nothing is drawn.
    """

    def __init__(self, description: str, *, big: bool = False) -> None:
        self._description = description
        self._big = big
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self._enabled = _stderr_is_terminal()

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        progress = self._progress
        if progress is None:
            slow = time.monotonic() - self._started > PROGRESS_AFTER_S
            if not (self._big or total > PROGRESS_MIN_BYTES or slow):
                return
            progress = self._start(total)
        progress.update(self._task, completed=done, total=total)

    def _start(self, total: int) -> Progress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(self._description, total=total)
        return self._progress

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stderr_is_terminal() -> bool:
    from rich.console import Console

    return Console(stderr=True).is_terminal


# -- data add ----------------------------------------------------------------------------------


def _stats_line(stats: AddStats) -> str:
    return (
        f"{stats.files_hashed:,} files / {format_size(stats.bytes_hashed)} hashed, "
        f"{stats.files_stored:,} files / {format_size(stats.bytes_stored)} stored "
        f"in {stats.seconds:.2f}s"
    )


def _add_summary(version: DatasetVersion) -> Table:
    from rich.text import Text

    stats = version.stats
    created = stats is None or stats.created
    headline = (
        Text.assemble("Added ", (version.ref, "bold green"))
        if created
        else Text.assemble(
            "Unchanged: still ",
            (version.ref, "bold"),
            " (same content as the latest version; nothing recorded)",
        )
    )
    rows: list[tuple[str, Any]] = [
        ("ref", version.ref),
        ("hash", version.hash),
        ("kind", version.kind.value),
        ("files", f"{version.num_files:,}"),
        ("size", format_size(version.size)),
        ("rows", _rows(version.num_rows)),
    ]
    if stats is not None:
        rows.append(("work", _stats_line(stats)))
    return _key_value_table(headline, rows)


def _schema_warning(diff: SchemaDiff, previous: str) -> None:
    from rich.text import Text

    lines = diff.summary()
    if not lines:
        return
    if diff.changed:
        text = Text(f"Warning: the schema changed since {previous}:", style="bold yellow")
        for line in lines:
            text.append(f"\n  - {line}", style="yellow")
    else:
        text = Text(f"Note: since {previous}:", style="dim")
        for line in lines:
            text.append(f"\n  - {line}", style="dim")
    message(text)


@_command("add")
def add_version(
    ctx: typer.Context,
    name: Name,
    path: Annotated[
        Path,
        typer.Argument(
            help="A folder (its files keep their layout), a file, or a table file (.csv, .tsv, "
            ".parquet, stored as Parquet with a schema and a profile).",
            metavar="PATH",
            show_default=False,
        ),
    ],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "-r",
            help="Validation rules (.yaml/.yml/.json) the table must pass; once it does, they "
            "are attached to the dataset and guard later adds too.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", help="A note kept with the version.")
    ] = "",
    format: Annotated[
        AddFormat,
        typer.Option(
            "--format",
            help="table or files to override what auto decides (table files become tables).",
            case_sensitive=False,
        ),
    ] = AddFormat.auto,
    unpack: Annotated[
        bool,
        typer.Option(
            "--unpack", help="Store the members of a .tar(.gz/.bz2/.xz) or .zip archive as files."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a new version of dataset NAME from a folder, a file or a table file.

    The dataset is created on first use. Unchanged content records nothing and reports the
    latest version. Tables are checked against the dataset's rules (or --rules) first: data
    that breaks them is refused, nothing is stored, and the command exits with status 1,
    listing every failure on stderr. A progress bar shows on stderr for big adds.

    Examples:
      loopml data add customers data/customers/
      loopml data add customers data/customers.csv --rules rules.yaml --json
    """
    from loopml import data

    with _ProgressBar(f"Storing {name}") as bar:
        version = data.add(
            name,
            path,
            description=description,
            rules=rules,
            format=format.value,
            unpack=unpack,
            progress=bar,
            tracking_uri=_uri(ctx),
        )
    diff = version.schema_diff
    changes = diff.summary() if diff is not None else []
    if as_json:
        stats = version.stats
        print_json(
            {
                "name": version.name,
                "version": version.version,
                "ref": version.ref,
                "hash": version.hash,
                "kind": version.kind,
                "num_files": version.num_files,
                "size": version.size,
                "num_rows": version.num_rows,
                "created": stats.created if stats is not None else True,
                "stats": stats.to_dict() if stats is not None else None,
                "schema_changed": bool(diff is not None and diff.changed),
                "schema_changes": changes,
                "schema_diff": diff.to_dict() if diff is not None else None,
            }
        )
        return
    print_table(_add_summary(version))
    if diff is not None:
        _schema_warning(diff, f"{version.name}@v{version.version - 1}")


# -- data ls -----------------------------------------------------------------------------------


def _datasets_table(datasets: Sequence[Dataset]) -> Table:
    table = _titled("Datasets")
    table.add_column("name", style="bold")
    table.add_column("latest", no_wrap=True)
    table.add_column("rules", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("description")
    for dataset in datasets:
        latest = None if dataset.latest_version is None else f"v{dataset.latest_version}"
        table.add_row(
            cell(dataset.name),
            cell(latest),
            cell("yes", "green") if dataset.rules else cell("no", "dim"),
            cell(format_ago(dataset.last_update_time)),
            cell(dataset.description or None),
        )
    return table


@_command("ls")
def list_datasets(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List datasets: latest version, rules attached, last update.

    Example:
      loopml data ls --json
    """
    from loopml import data

    datasets = data.list_datasets(tracking_uri=_uri(ctx))
    if as_json:
        print_json(datasets)
        return
    if not datasets:
        message("No datasets yet: add one with `loopml data add NAME PATH`.")
        return
    print_table(_datasets_table(datasets))


# -- data show ---------------------------------------------------------------------------------


def _info(version: DatasetVersion) -> dict[str, Any]:
    info = version.info
    return {
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "hash": version.hash,
        "kind": version.kind,
        "num_files": version.num_files,
        "size": version.size,
        "num_rows": version.num_rows,
        "creation_time": info.creation_time,
        "source": info.source,
        "description": info.description,
    }


def _overview(version: DatasetVersion) -> Table:
    info = version.info
    rows: list[tuple[str, Any]] = [
        ("ref", version.ref),
        ("hash", version.hash),
        ("kind", version.kind.value),
        ("files", f"{version.num_files:,}"),
        ("size", format_size(version.size)),
        ("rows", _rows(version.num_rows)),
        ("created", format_time(info.creation_time)),
        ("source", info.source or None),
        ("description", info.description or None),
    ]
    return _key_value_table(f"Dataset {version.ref}", rows)


def _top(counts: dict[str, int], total: int | None = None) -> str | None:
    """``pro 50.0%, basic 25.0%, …`` (shares of ``total``), else ``pro (4), basic (2), …``."""
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if total:
        shown = [f"{value} {count / total:.1%}" for value, count in items[:SHOWN_VALUES]]
    else:
        shown = [f"{value} ({count:,})" for value, count in items[:SHOWN_VALUES]]
    more = f", … (+{len(items) - SHOWN_VALUES})" if len(items) > SHOWN_VALUES else ""
    return ", ".join(shown) + more


def _fitted_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[dict[str, str | None]],
    *,
    optional: Sequence[str],
    right: Sequence[str] = (),
) -> tuple[Table, int]:
    """A table of ``rows`` (header -> value) whose ``optional`` columns (most important
    first) are dropped, least important first, until it fits the terminal. Returns the
    table and how many columns were dropped."""

    from loopml.cli._common import widest_fitting

    def build(count: int) -> Table:
        kept = [h for h in headers if h not in optional or h in optional[:count]]
        table = _titled(title)
        for header in kept:
            table.add_column(
                header,
                justify="right" if header in right else "left",
                style="bold" if header == headers[0] else "",
                no_wrap=header not in _WRAPPING,
                max_width=TOP_VALUES_WIDTH if header in _WRAPPING else None,
            )
        for row in rows:
            table.add_row(*(cell(row.get(h)) for h in kept))
        return table

    table, shown = widest_fitting(build, len(optional))
    return table, len(optional) - shown  # type: ignore[return-value]


def _schema_table(schema: Schema) -> tuple[Table, int]:
    rows: list[dict[str, str | None]] = []
    for column in schema.columns:
        lengths = None
        if column.min_length is not None:
            lengths = f"{column.min_length}..{column.max_length}"
            if column.min_length == column.max_length:
                lengths = str(column.min_length)
        rows.append(
            {
                "column": column.name,
                "type": column.type,
                "kind": column.kind,
                "nulls": f"{column.null_count:,}" if column.nullable else "no nulls",
                "min": _schema_value(column.min),
                "max": _schema_value(column.max),
                "distinct": None if column.distinct is None else f"{column.distinct:,}",
                "top categories": _top(column.categories or {}),
                "length": lengths,
            }
        )
    headers = ["column", "type", "kind", "nulls", "min", "max", "distinct", "top categories"]
    return _fitted_table(
        "Schema",
        [*headers, "length"],
        rows,
        optional=["min", "max", "top categories", "distinct", "length"],
        right=["nulls", "min", "max", "distinct"],
    )


def _profile_table(profile: Profile, schema: Schema | None) -> tuple[Table, int]:
    from loopml.data.profile import CategoricalProfile, NumericProfile

    kinds = {c.name: c.kind for c in schema.columns} if schema is not None else {}
    rows: list[dict[str, str | None]] = []
    for name, column in profile.columns.items():
        missing = f"{column.missing:,}"
        if column.missing and column.missing_rate is not None:
            missing += f" ({column.missing_rate:.1%})"
        row: dict[str, str | None] = {"column": name, "missing": missing}
        if isinstance(column, NumericProfile):
            values = {
                "mean": column.mean,
                "min": column.min,
                "median": column.quantile(0.5),
                "max": column.max,
            }
            if kinds.get(name) == "datetime":
                row.update({key: _epoch(value) for key, value in values.items()})
                std = column.std
                row["std"] = None if std is None else format_duration(int(std * 1000))
            else:
                row.update({key: _num(value) for key, value in values.items()})
                row["std"] = _num(column.std)
        elif isinstance(column, CategoricalProfile):
            row["top values"] = _top(column.counts, column.count)
        rows.append(row)
    numbers = ["mean", "std", "min", "median", "max"]
    return _fitted_table(
        "Profile",
        ["column", "missing", *numbers, "top values"],
        rows,
        optional=["mean", "top values", "std", "min", "max", "median"],
        right=["missing", *numbers],
    )


def _usages_table(usages: Sequence[DatasetInput]) -> Table:
    table = _titled("Used by runs (lineage)")
    table.add_column("run id", no_wrap=True)
    table.add_column("context")
    table.add_column("logged", no_wrap=True)
    for usage in usages:
        table.add_row(cell(usage.run_id), cell(usage.context), cell(format_time(usage.time)))
    return table


def _models_table(models: Sequence[ModelVersion]) -> Table:
    table = _titled("Models trained on it (lineage)")
    table.add_column("model", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("aliases")
    table.add_column("status")
    table.add_column("run id", no_wrap=True)
    for mv in models:
        table.add_row(
            cell(mv.name),
            cell(mv.version),
            cell(", ".join(mv.aliases) or None),
            cell(mv.status.value),
            cell(mv.run_id),
        )
    return table


@_command("show")
def show_version(
    ctx: typer.Context,
    ref: Ref,
    all_files: Annotated[
        bool,
        typer.Option(
            "--files",
            help=f"List every file (by default a files dataset lists its first {SHOWN_FILES}).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a dataset version: info, schema, profile, lineage and files.

    For a table: its schema (types, nulls, ranges, categories) and the profile of each column
    (mean, spread, missing values, top values). Lineage lists the runs that used the version
    (recorded by loopml.log_input) and the registered model versions those runs produced. A
    files dataset lists its first files and their sizes.

    Examples:
      loopml data show customers
      loopml data show customers@v2 --files
    """
    from loopml import data

    version = data.get(ref, tracking_uri=_uri(ctx))
    schema, profile = version.schema, version.profile
    usages = version.usages()
    models = version.models()
    files = version.files()
    if as_json:
        print_json(
            {
                "info": _info(version),
                "schema": schema.to_dict() if schema is not None else None,
                "profile": profile.to_dict() if profile is not None else None,
                "usages": usages,
                "models": models,
                "files": files,
            }
        )
        return
    parts: list[RenderableType] = [_overview(version)]
    hidden = 0
    if schema is not None:
        table, dropped = _schema_table(schema)
        parts.append(table)
        hidden += dropped
    if profile is not None:
        table, dropped = _profile_table(profile, schema)
        parts.append(table)
        hidden += dropped
    if usages:
        parts.append(_usages_table(usages))
    if models:
        parts.append(_models_table(models))
    show_files = all_files or version.kind.value == "files"
    shown = files if all_files else files[:SHOWN_FILES]
    if show_files and shown:
        title = f"Files ({len(files):,})"
        if len(shown) < len(files):
            title = f"Files (first {len(shown)} of {len(files):,})"
        parts.append(_file_table(title, shown))
    _print_parts(parts)
    if hidden:
        message(f"{hidden} columns not shown for lack of width: see --json.", style="dim")
    if not usages:
        message(f"No run has used {version.ref} yet (loopml.log_input records that).", style="dim")
    if show_files and len(shown) < len(files):
        message(f"{len(files) - len(shown):,} more files: add --files to list them.", style="dim")


# -- data diff ---------------------------------------------------------------------------------


def _diff_counts(delta: DatasetDiff) -> str:
    return (
        f"{len(delta.added):,} added, {len(delta.removed):,} removed, "
        f"{len(delta.changed):,} changed, {delta.unchanged:,} unchanged"
    )


def _limited(entries: Sequence[Any]) -> tuple[Sequence[Any], int]:
    return entries[:SHOWN_DIFF_FILES], max(len(entries) - SHOWN_DIFF_FILES, 0)


def _changed_table(changed: Sequence[tuple[FileEntry, FileEntry]]) -> Table:
    table = _titled(f"Changed files ({len(changed):,})")
    table.add_column("path", style="bold")
    table.add_column("old size", justify="right", no_wrap=True)
    table.add_column("new size", justify="right", no_wrap=True)
    for old, new in changed:
        table.add_row(cell(old.path), cell(format_size(old.size)), cell(format_size(new.size)))
    return table


def _delta_value(statistic: str, value: Any, kind: str) -> str | None:
    if value is None:
        return None
    if statistic == "kind":
        return str(value)
    if statistic in ("missing_rate", "other_share") or statistic.startswith("share:"):
        return _percent(float(value))
    if kind == "datetime" and statistic in ("mean", "min", "max"):
        return _epoch(float(value))
    if kind == "datetime" and statistic == "std":
        return format_duration(int(float(value) * 1000))
    return _num(float(value), 6)


def _psi_style(psi: float | None) -> str:
    if psi is None or psi <= 0.1:
        return ""
    return "bold red" if psi > 0.25 else "yellow"


def _columns_table(delta: DatasetDiff, kinds: dict[str, str]) -> Table:
    table = _titled("Column profiles (old → new)")
    table.caption = "psi: population stability index (over 0.1: a shift, over 0.25: a large one)"
    table.caption_justify = "left"
    table.add_column("column", style="bold")
    table.add_column("psi", justify="right", no_wrap=True)
    table.add_column("statistic")
    table.add_column("old", justify="right")
    table.add_column("new", justify="right")
    for column in delta.columns:
        kind = kinds.get(column.column, column.kind)
        items = list(column.changes.items())
        for index, (statistic, (old, new)) in enumerate(items):
            differs = old != new
            table.add_row(
                cell(column.column if index == 0 else ""),
                cell(_num(column.psi) if index == 0 else "", _psi_style(column.psi)),
                cell(statistic),
                cell(_delta_value(statistic, old, kind)),
                cell(_delta_value(statistic, new, kind), "bold yellow" if differs else ""),
                end_section=index == len(items) - 1,
            )
    return table


@_command("diff")
def diff_versions(
    ctx: typer.Context,
    old: Annotated[
        str,
        typer.Argument(
            help="The older version, e.g. customers@v1.", metavar="OLD", show_default=False
        ),
    ],
    new: Annotated[
        str,
        typer.Argument(
            help="The newer version, e.g. customers@v2 (or customers: the latest).",
            metavar="NEW",
            show_default=False,
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Compare two dataset versions: files, rows, schema and column profiles.

    Lists the files added, removed and changed; for tables also the row count, schema changes
    and, per column, how its statistics moved and the population stability index (PSI) of
    the new distribution against the old one.

    Example:
      loopml data diff customers@v1 customers@v2
    """
    from rich.text import Text

    from loopml import data

    uri = _uri(ctx)
    before, after = data.get(old, tracking_uri=uri), data.get(new, tracking_uri=uri)
    delta = data.diff(before, after)
    if as_json:
        print_json(delta.to_dict())
        return
    parts: list[RenderableType] = [
        Text.assemble((delta.old, "bold"), " → ", (delta.new, "bold"), ": ", _diff_counts(delta))
    ]
    hidden = 0
    for title, entries in (("Added files", delta.added), ("Removed files", delta.removed)):
        if entries:
            shown, more = _limited(entries)
            hidden += more
            parts.append(_file_table(f"{title} ({len(entries):,})", shown))
    if delta.changed:
        shown_changed, more = _limited(delta.changed)
        hidden += more
        parts.append(_changed_table(shown_changed))
    old_rows, new_rows = delta.rows
    if old_rows is not None or new_rows is not None:
        change = ""
        if old_rows is not None and new_rows is not None:
            change = f" ({new_rows - old_rows:+,})"
        parts.append(Text(f"rows: {_rows(old_rows) or '-'} → {_rows(new_rows) or '-'}{change}"))
    if delta.schema is not None:
        lines = delta.schema.summary()
        if lines:
            style = "bold yellow" if delta.schema.changed else ""
            text = Text("Schema changes:", style=style)
            for line in lines:
                text.append(f"\n  - {line}")
            parts.append(text)
        else:
            parts.append(Text("Schema: unchanged"))
    if delta.columns:
        schema = after.schema
        kinds = {c.name: c.kind for c in schema.columns} if schema is not None else {}
        parts.append(_columns_table(delta, kinds))
    _print_parts(parts)
    if hidden:
        message(f"{hidden:,} more file changes not listed: see --json.", style="dim")


# -- data get ----------------------------------------------------------------------------------


@_command("get")
def get_version(
    ctx: typer.Context,
    ref: Ref,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="The folder to write the files into (created if needed; other files in it "
            "are left alone, files of the version are replaced).",
            file_okay=False,
            show_default=False,
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Write a dataset version's files into a folder.

    Each file is verified against its hash. A table version is one file, data.parquet.

    Example:
      loopml data get customers@v2 -o data/customers
    """
    from loopml import data

    version = data.get(ref, tracking_uri=_uri(ctx))
    big = version.size > PROGRESS_MIN_BYTES or version.num_files > PROGRESS_MIN_FILES
    with _ProgressBar(f"Fetching {version.ref}", big=big) as bar:
        folder = version.materialize(output, progress=bar)
    if as_json:
        print_json(
            {
                "ref": version.ref,
                "hash": version.hash,
                "path": str(folder.absolute()),
                "num_files": version.num_files,
                "size": version.size,
            }
        )
        return
    message(f"Wrote {version.ref}: {version.num_files:,} files, {format_size(version.size)} into:")
    print(folder.absolute())


# -- data validate -----------------------------------------------------------------------------


def _examples(examples: Sequence[dict[str, Any]]) -> str | None:
    """``row 3: age=3, plan='gold'`` per example, at most SHOWN_VALUES of them."""
    lines = []
    for example in examples[:SHOWN_VALUES]:
        rows = example.get("rows") or [example.get("row")]
        where = "rows " + ", ".join(map(str, rows)) if len(rows) > 1 else f"row {rows[0]}"
        values = example.get("values") or {}
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        lines.append(f"{where}: {shown}" if shown else where)
    if len(examples) > SHOWN_VALUES:
        lines.append("…")
    return "\n".join(lines) or None


def _failures_table(report: ValidationReport) -> Table:
    table = _titled("Failed rules")
    table.add_column("rule", style="bold")
    table.add_column("column")
    table.add_column("failing rows", justify="right", no_wrap=True)
    table.add_column("message")
    table.add_column("examples")
    for failure in report.failures:
        table.add_row(
            cell(failure.rule),
            cell(failure.column),
            cell(f"{failure.count:,}"),
            cell(failure.message),
            cell(_examples(failure.examples)),
        )
    return table


@_command("validate")
def validate_table(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The dataset whose attached rules apply (see `loopml data rules`).",
            metavar="NAME",
            show_default=False,
        ),
    ],
    path: Annotated[
        Path,
        typer.Argument(
            help="The table to check: a .csv, .tsv or .parquet file.",
            metavar="PATH",
            show_default=False,
        ),
    ],
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            "-r",
            help="Check against the rules in this .yaml/.yml/.json file instead of NAME's.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    warn_only: Annotated[
        bool,
        typer.Option("--warn-only", help="Report failures but exit 0 (nothing gates on it)."),
    ] = False,
    max_examples: Annotated[
        int, typer.Option("--examples", min=0, help="Example rows kept per failed rule.")
    ] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Check a table against a dataset's rules, listing every failure.

    Exit status: 0 when every rule passes; 1 when a rule fails (unless --warn-only), so the
    command can gate a pipeline; 2 for bad input (unreadable table or rules, no rules
    attached); 3 when NAME does not exist.

    Examples:
      loopml data validate customers new_batch.csv
      loopml data validate customers batch.parquet --rules strict.yaml --json
    """
    from rich.text import Text

    from loopml import data

    report = data.validate(
        path,
        rules if rules is not None else _dataset_name(name),
        max_examples=max_examples,
        tracking_uri=_uri(ctx),
    )
    if as_json:
        print_json(report.to_dict())
    else:
        head = report.summary().splitlines()[0].rstrip(":")
        if report.passed:
            print_table(Text(f"Passed: {head}.", style="green"))
        else:
            _print_parts([Text(f"Failed: {head}.", style="bold red"), _failures_table(report)])
    if not report.passed and not warn_only:
        raise typer.Exit(EXIT_RULES_FAILED)


def _dataset_name(name: str) -> str:
    """``name`` checked as a dataset name, so that a mistyped one is not read as YAML text."""
    from loopml.storage.validation import validate_dataset_name

    return validate_dataset_name(name)


# -- data rules --------------------------------------------------------------------------------


@_command("rules")
def dataset_rules(
    ctx: typer.Context,
    name: Name,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A .yaml/.yml/.json rules file to attach (replacing any attached rules); "
            "without it, print the attached rules as YAML.",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Detach the dataset's rules.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Attach validation rules to a dataset, print them or remove them.

    Attached rules guard every later `loopml data add` of a table, and `loopml data validate`
    checks against them. Attaching rules to a new name creates the dataset.

    Examples:
      loopml data rules customers rules.yaml
      loopml data rules customers > rules.yaml
      loopml data rules customers --remove
    """
    from loopml import data
    from loopml.data import Rules

    uri = _uri(ctx)
    if file is not None and remove:
        raise typer.BadParameter("give a FILE or --remove, not both.", param_hint="FILE")
    if remove:
        dataset = data.set_rules(name, None, tracking_uri=uri)
        action = f"Removed the rules of {dataset.name!r}."
    elif file is not None:
        dataset = data.set_rules(name, file, tracking_uri=uri)
        action = f"Attached the rules in {file.name} to {dataset.name!r}."
    else:
        dataset = _find_dataset(_dataset_name(name), data.list_datasets(tracking_uri=uri))
        action = ""
    if as_json:
        print_json({"name": dataset.name, "rules": dataset.rules})
    elif dataset.rules:
        _write_plain(Rules.from_dict(dataset.rules).to_yaml())
    elif not action:
        message(f"Dataset {dataset.name!r} has no rules attached.")
    if action:
        message(action)


def _find_dataset(name: str, datasets: Sequence[Dataset]) -> Dataset:
    from loopml.errors import DatasetNotFoundError

    for dataset in datasets:
        if dataset.name == name:
            return dataset
    raise DatasetNotFoundError(f"No dataset named {name!r}.", name=name)


def _write_plain(text: str) -> None:
    """Plain text to stdout, as it is (YAML is meant to be redirected into a file)."""
    import sys

    sys.stdout.write(text if text.endswith("\n") else text + "\n")
