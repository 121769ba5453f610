"""``loopml models``: register logged models, inspect versions and lineage, move aliases,
archive and delete versions, read the registry's history and compare two versions.

Every command wraps :mod:`loopml.registry` (and :func:`loopml.models.compare`) and
renders what it returns. Those modules are imported inside the commands, so ``loopml --help``
stays fast.

Exit codes follow :mod:`loopml.cli._common`: 2 for bad input (a malformed source, version
or alias; ``delete`` without ``--yes``); 3 for no such model, version or alias; 4 for a
refused change (archiving or deleting a version that holds aliases without ``--force``,
pointing an alias at an archived version).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli._common import (
    JsonFlag,
    get_state,
    message,
    print_json,
    print_table,
    to_jsonable,
)
from loopml.cli._format import cell, format_ago, format_number, format_time
from loopml.cli._format import key_value_table as _key_value_table
from loopml.cli._format import print_parts as _print_parts
from loopml.cli._format import reflow as _reflow
from loopml.cli._format import titled_table as _titled

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from rich.console import RenderableType
    from rich.table import Table

    from loopml.entities import ModelVersion, RegisteredModel, RegistryEvent
    from loopml.registry import Lineage

app = typer.Typer(
    help="Register logged models, inspect versions and lineage, move aliases, archive, "
    "delete and compare versions.",
    no_args_is_help=True,
)

#: a run id: what ``RUN_ID`` and ``RUN_ID/PATH`` shorthands for ``runs:/`` start with
_RUN_ID = re.compile(r"[0-9a-f]{32}")
#: a version number, ``3`` or ``v3``
_NUMBER = re.compile(r"[vV]?(\d{1,10})")
#: the artifact path a bare RUN_ID stands for (what log_model's examples use)
DEFAULT_MODEL_PATH = "model"

Name = Annotated[
    str,
    typer.Argument(help="The registered model's name.", metavar="NAME", show_default=False),
]
VersionRef = Annotated[
    str,
    typer.Argument(
        help="A version: its number (3 or v3), an alias (champion) or 'latest'.",
        metavar="VERSION",
        show_default=False,
    ),
]
Reason = Annotated[
    str,
    typer.Option("--reason", "-m", help="Why: recorded in the model's history."),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Also remove the aliases that point at the version."),
]


def _command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command(name)`` with the docstring reflowed into the help text."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        return app.command(name, help=_reflow(func.__doc__))(func)

    return register


def _uri(ctx: typer.Context) -> str | None:
    """The tracking URI the root ``--tracking-uri`` option names (None: the defaults apply)."""
    return get_state(ctx).tracking_uri


# -- resolving arguments -----------------------------------------------------------------------


def _parse_version(text: str) -> int | str:
    """``3`` or ``v3`` as the number 3; anything else (an alias, ``latest``) as it is."""
    number = _NUMBER.fullmatch(text.strip())
    if number is not None:
        return int(number.group(1))
    return text.strip()


def _resolve(name: str, ref: str, uri: str | None) -> ModelVersion:
    """The version ``ref`` (number, ``vN``, alias or ``latest``) of model ``name``."""
    from loopml import registry
    from loopml.entities import ModelVersionStatus
    from loopml.errors import ModelNotFoundError

    wanted = _parse_version(ref)
    if wanted == "latest":
        for version in registry.list_versions(name, tracking_uri=uri):  # newest first
            if version.status == ModelVersionStatus.READY:
                return version
        raise ModelNotFoundError(
            f"The model {name!r} has no version that is not archived.", name=name
        )
    return registry.get_version(name, wanted, tracking_uri=uri)


def _expand_source(source: str) -> str:
    """A model URI from SOURCE: ``runs:/``/``models:/`` URIs as they are, ``RUN_ID/PATH`` as
    ``runs:/RUN_ID/PATH`` and a bare ``RUN_ID`` as ``runs:/RUN_ID/model``."""
    from loopml.errors import InvalidArgumentError

    text = source.strip()
    if text.startswith(("runs:/", "models:/")):
        return text
    run_id, _, path = text.partition("/")
    if _RUN_ID.fullmatch(run_id):
        return f"runs:/{run_id}/{path or DEFAULT_MODEL_PATH}"
    raise InvalidArgumentError(
        f"Cannot read {source!r} as a model source. Give a model URI (runs:/RUN_ID/PATH, "
        "models:/NAME/VERSION, models:/NAME@ALIAS), RUN_ID/PATH, or a RUN_ID alone for "
        f"runs:/RUN_ID/{DEFAULT_MODEL_PATH} (a run id is 32 lowercase hexadecimal characters).",
        field="source",
    )


# -- rendering helpers -------------------------------------------------------------------------


def _version_dict(mv: ModelVersion) -> dict[str, Any]:
    """A version as JSON: its fields plus its ``models:/`` URI."""
    body: dict[str, Any] = to_jsonable(mv)
    body["uri"] = mv.uri
    return body


def _aliases_text(aliases: Mapping[str, int]) -> str | None:
    """``champion → 3, challenger → 4``."""
    return ", ".join(f"{alias} → {version}" for alias, version in aliases.items()) or None


def _tags_text(tags: Mapping[str, str]) -> str | None:
    return ", ".join(f"{key}={value}" for key, value in sorted(tags.items())) or None


def _status_cell(status: str) -> Any:
    return cell(status, "green" if status == "READY" else "dim")


def _move(alias: str, version: object, previous: object) -> str:
    """``champion: 2 → 3``, or ``champion → 3 (new)`` when the alias did not exist."""
    if previous is None:
        return f"{alias} → {version} (new)"
    return f"{alias}: {previous} → {version}"


def _label(mv: ModelVersion, ref: str) -> str:
    """How a compared version is named: ``version 3``, or ``champion (version 3)``."""
    wanted = _parse_version(ref)
    if isinstance(wanted, int):
        return f"version {mv.version}"
    return f"{wanted} (version {mv.version})"


# -- models ls ---------------------------------------------------------------------------------


def _models_table(registered: Sequence[RegisteredModel]) -> Table:
    table = _titled("Registered models")
    table.add_column("name", style="bold")
    table.add_column("latest", justify="right", no_wrap=True)
    table.add_column("aliases")
    table.add_column("updated", no_wrap=True)
    table.add_column("description")
    for model in registered:
        latest = None if model.latest_version is None else f"v{model.latest_version}"
        table.add_row(
            cell(model.name),
            cell(latest),
            cell(_aliases_text(model.aliases)),
            cell(format_ago(model.last_update_time)),
            cell(model.description or None),
        )
    return table


@_command("ls")
def list_models(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List registered models: latest version, aliases, last update, description.

    Example:
      loopml models ls --json
    """
    from loopml import registry

    registered = registry.list_models(tracking_uri=_uri(ctx))
    if as_json:
        print_json(registered)
        return
    if not registered:
        message(
            "No registered models yet: register one with `loopml models register RUN_ID "
            "--name NAME`."
        )
        return
    print_table(_models_table(registered))


# -- models show -------------------------------------------------------------------------------


def _model_overview(model: RegisteredModel) -> Table:
    rows: list[tuple[str, Any]] = [
        ("description", model.description or None),
        ("latest", None if model.latest_version is None else f"v{model.latest_version}"),
        ("aliases", _aliases_text(model.aliases)),
        ("tags", _tags_text(model.tags)),
        ("created", format_time(model.creation_time)),
        ("updated", format_time(model.last_update_time)),
    ]
    return _key_value_table(f"Model {model.name}", rows)


def _versions_table(versions: Sequence[ModelVersion]) -> Table:
    table = _titled(f"Versions ({len(versions)})")
    table.add_column("version", justify="right", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("aliases")
    table.add_column("flavor", no_wrap=True)
    table.add_column("run id", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("source")
    for mv in versions:
        table.add_row(
            cell(mv.version),
            _status_cell(mv.status.value),
            cell(", ".join(mv.aliases) or None),
            cell(mv.flavor or None),
            cell(mv.run_id),
            cell(format_time(mv.creation_time)),
            cell(mv.source or None),
        )
    return table


def _version_overview(mv: ModelVersion) -> Table:
    rows: list[tuple[str, Any]] = [
        ("uri", mv.uri),
        ("status", _status_cell(mv.status.value)),
        ("aliases", ", ".join(mv.aliases) or None),
        ("description", mv.description or None),
        ("tags", _tags_text(mv.tags)),
        ("source", mv.source or None),
        ("package", mv.package_digest),
        ("created", format_time(mv.creation_time)),
        ("updated", format_time(mv.last_update_time)),
    ]
    return _key_value_table(f"Model {mv.name} version {mv.version}", rows)


def _lineage_table(found: Lineage) -> Table:
    commit = found.git_commit
    if commit is not None and found.git_dirty:
        commit += " (uncommitted changes)"
    rows: list[tuple[str, Any]] = [
        ("run id", found.run_id),
        ("experiment id", found.experiment_id),
        ("git commit", commit),
        ("entry point", found.entry_point),
    ]
    return _key_value_table("Lineage", rows)


def _datasets_table(found: Lineage) -> Table:
    table = _titled("Datasets used by the run")
    table.add_column("dataset", style="bold", no_wrap=True)
    table.add_column("context")
    for usage in found.datasets:
        table.add_row(cell(usage.ref), cell(usage.context))
    return table


def _read_manifest(digest: str, uri: str | None) -> dict[str, Any]:
    """The package's manifest, read from the blob store (the model itself is not loaded)."""
    from loopml.models._manifest import parse_manifest
    from loopml.storage.uris import open_store

    return parse_manifest(open_store(uri).blobs.read_bytes(digest), source=digest)


def _signature_lines(manifest: Mapping[str, Any]) -> list[str]:
    from loopml.errors import InvalidArgumentError
    from loopml.models import Signature

    body = manifest.get("signature")
    if not body:
        return []
    try:
        return Signature.from_dict(body).describe()
    except InvalidArgumentError as exc:
        return [f"(unreadable: {exc.message})"]


def _requirement_lines(manifest: Mapping[str, Any]) -> list[str]:
    from loopml.models._requirements import pip_lines

    return pip_lines(dict(manifest.get("requirements") or {}))


def _package_dict(manifest: Mapping[str, Any]) -> dict[str, Any]:
    files = manifest.get("files") or {}
    return {
        "flavor": manifest.get("flavor"),
        "framework": manifest.get("framework"),
        "framework_version": manifest.get("framework_version"),
        "python_version": manifest.get("python_version"),
        "loopml_version": manifest.get("loopml_version"),
        "needs_pickle": manifest.get("needs_pickle"),
        "requirements": manifest.get("requirements") or {},
        "signature": manifest.get("signature"),
        "input_example": manifest.get("input_example"),
        "num_files": len(files),
        "size": sum(int(entry.get("size", 0)) for entry in files.values()),
        "metadata": manifest.get("metadata") or {},
    }


def _package_table(manifest: Mapping[str, Any]) -> Table:
    from loopml.cli._format import format_size

    package = _package_dict(manifest)
    framework = package["framework"]
    if framework and package["framework_version"]:
        framework = f"{framework} {package['framework_version']}"
    rows: list[tuple[str, Any]] = [
        ("flavor", package["flavor"]),
        ("framework", framework),
        ("python", package["python_version"]),
        ("loopml", package["loopml_version"]),
        ("needs pickle", "yes (loads only with trusted=True)" if package["needs_pickle"] else "no"),
        ("files", f"{package['num_files']:,} ({format_size(package['size'])})"),
        ("requirements", "\n".join(_requirement_lines(manifest)) or None),
        ("signature", "\n".join(_signature_lines(manifest)) or None),
    ]
    return _key_value_table("Package", rows)


@_command("show")
def show_model(
    ctx: typer.Context,
    name: Name,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Show this version (number, alias or 'latest'): its lineage and package.",
            metavar="N|ALIAS",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a registered model and its versions, or one version in detail.

    Without --version: the model's description, tags and aliases, and every version (status,
    aliases, flavor, run, source). With --version: that version, its lineage (the run, its
    experiment, the dataset versions the run used, the git commit and entry point) and its
    package (flavor, framework version, requirements, signature), read from the package's
    manifest without loading the model.

    Examples:
      loopml models show churn
      loopml models show churn --version champion
      loopml models show churn --version 3 --json
    """
    from loopml import registry

    uri = _uri(ctx)
    if version is None:
        model = registry.get_model(name, tracking_uri=uri)
        versions = registry.list_versions(name, tracking_uri=uri)
        if as_json:
            print_json({"model": model, "versions": [_version_dict(v) for v in versions]})
            return
        parts: list[RenderableType] = [_model_overview(model)]
        if versions:
            parts.append(_versions_table(versions))
        _print_parts(parts)
        if not versions:
            message(f"The model {name!r} has no versions.", style="dim")
        return
    mv = _resolve(name, version, uri)
    found = registry.lineage(name, mv.version, tracking_uri=uri)
    manifest = _read_manifest(mv.package_digest, uri)
    if as_json:
        print_json(
            {
                "version": _version_dict(mv),
                "lineage": found.to_dict(),
                "package": _package_dict(manifest),
            }
        )
        return
    parts = [_version_overview(mv), _lineage_table(found)]
    if found.datasets:
        parts.append(_datasets_table(found))
    parts.append(_package_table(manifest))
    _print_parts(parts)
    if found.run_id is None:
        message("No run is recorded for this version, so no lineage.", style="dim")
    elif not found.datasets:
        message("The run recorded no dataset (loopml.log_input records that).", style="dim")


# -- models register ---------------------------------------------------------------------------


@_command("register")
def register_model(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="The model: runs:/RUN_ID/PATH, models:/NAME/VERSION, models:/NAME@ALIAS, "
            f"or the shorthands RUN_ID/PATH and RUN_ID (runs:/RUN_ID/{DEFAULT_MODEL_PATH}).",
            metavar="SOURCE",
            show_default=False,
        ),
    ],
    name: Annotated[
        str,
        typer.Option(
            "--name",
            "-n",
            help="The registered model (created on first use).",
            show_default=False,
        ),
    ],
    description: Annotated[
        str, typer.Option("--description", "-d", help="A note kept with the version.")
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Register a logged model package as the next version of a registered model.

    The version keeps the package's digest (it always loads the same bytes) and the run that
    logged it (its datasets and code version: see `loopml models show NAME --version N`).

    Examples:
      loopml models register runs:/0123456789abcdef0123456789abcdef/model --name churn
      loopml models register 0123456789abcdef0123456789abcdef --name churn -d "C=0.1"
      loopml models register models:/churn-staging@champion --name churn
    """
    from rich.text import Text

    from loopml import registry

    model_uri = _expand_source(source)
    mv = registry.register(model_uri, name, description=description, tracking_uri=_uri(ctx))
    if as_json:
        print_json(_version_dict(mv))
        return
    headline = Text.assemble("Registered ", (f"{mv.name} version {mv.version}", "bold green"))
    rows: list[tuple[str, Any]] = [
        ("uri", mv.uri),
        ("source", mv.source),
        ("run id", mv.run_id),
        ("flavor", mv.flavor or None),
        ("package", mv.package_digest),
    ]
    print_table(_key_value_table(headline, rows))


# -- models alias ------------------------------------------------------------------------------


@_command("alias")
def set_alias(
    ctx: typer.Context,
    name: Name,
    alias: Annotated[
        str,
        typer.Argument(
            help="The alias (champion, challenger, ...).", metavar="ALIAS", show_default=False
        ),
    ],
    version: Annotated[
        str | None,
        typer.Argument(
            help="The version to point at: a number (3 or v3), another alias or 'latest'.",
            metavar="VERSION",
            show_default=False,
        ),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Point an alias at a version (atomically), or remove it with --delete.

    Every move is recorded with who (LOOPML_ACTOR, else the user name), when and why (see
    `loopml models history`). An alias can only point at a version that is not archived.

    Examples:
      loopml models alias churn champion 3 --reason "better recall"
      loopml models alias churn champion challenger
      loopml models alias churn challenger --delete
    """
    from rich.text import Text

    from loopml import registry

    uri = _uri(ctx)
    if delete:
        if version is not None:
            raise typer.BadParameter("give a VERSION or --delete, not both.", param_hint="VERSION")
        previous = registry.delete_alias(name, alias, reason=reason, tracking_uri=uri)
        if as_json:
            print_json(
                {
                    "name": name,
                    "alias": alias,
                    "version": None,
                    "previous": previous,
                    "deleted": True,
                }
            )
            return
        print_table(Text(f"Removed {alias} (was version {previous})."))
        return
    if version is None:
        raise typer.BadParameter("give the VERSION to point at, or --delete.", param_hint="VERSION")
    wanted = _parse_version(version)
    number = wanted if isinstance(wanted, int) else _resolve(name, version, uri).version
    previous_version = registry.set_alias(name, alias, number, reason=reason, tracking_uri=uri)
    if as_json:
        print_json(
            {
                "name": name,
                "alias": alias,
                "version": number,
                "previous": previous_version,
                "deleted": False,
            }
        )
        return
    print_table(Text(_move(alias, number, previous_version)))


# -- models archive / restore / delete ---------------------------------------------------------


def _refused_with_aliases(mv: ModelVersion, doing: str) -> Exception:
    """The library's refusal, worded for the command line (``--force``, not ``force=True``)."""
    from loopml.errors import ConflictError

    held = ", ".join(mv.aliases) or "aliases"
    return ConflictError(
        f"Version {mv.version} of {mv.name!r} holds the aliases {held}: move them first "
        f"(loopml models alias {mv.name} ALIAS VERSION), or pass --force to remove them "
        f"while {doing} it.",
        name=mv.name,
        version=mv.version,
        aliases=list(mv.aliases),
    )


def _status_change(
    mv: ModelVersion, after: ModelVersion, word: str, removed: Sequence[str], as_json: bool
) -> None:
    from rich.text import Text

    if as_json:
        body = _version_dict(after)
        body["removed_aliases"] = list(removed)
        print_json(body)
        return
    line = Text(f"{word} {mv.name} version {mv.version}.")
    if removed:
        line.append(f" Removed the aliases: {', '.join(removed)}.")
    print_table(line)


@_command("archive")
def archive_version(
    ctx: typer.Context,
    name: Name,
    version: VersionRef,
    force: Force = False,
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Archive a version: it can hold no alias and 'latest' skips it.

    The version keeps its number and package (models:/NAME/N still loads it). A version
    that an alias points at is refused (exit status 4) unless --force, which removes those
    aliases (recorded in the history).

    Examples:
      loopml models archive churn 2 --reason "superseded"
      loopml models archive churn 3 --force
    """
    from loopml import registry
    from loopml.errors import ConflictError

    uri = _uri(ctx)
    mv = _resolve(name, version, uri)
    try:
        after = registry.archive_version(
            name, mv.version, force=force, reason=reason, tracking_uri=uri
        )
    except ConflictError as exc:
        if force or not mv.aliases:
            raise
        raise _refused_with_aliases(mv, "archiving") from exc
    _status_change(mv, after, "Archived", mv.aliases if force else (), as_json)


@_command("restore")
def restore_version(
    ctx: typer.Context,
    name: Name,
    version: VersionRef,
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Restore an archived version (it may hold aliases again).

    Example:
      loopml models restore churn 2
    """
    from loopml import registry

    uri = _uri(ctx)
    mv = _resolve(name, version, uri)
    after = registry.restore_version(name, mv.version, reason=reason, tracking_uri=uri)
    _status_change(mv, after, "Restored", (), as_json)


@_command("delete")
def delete_version(
    ctx: typer.Context,
    name: Name,
    version: VersionRef,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Really delete (nothing is asked).")
    ] = False,
    force: Force = False,
    reason: Reason = "",
    as_json: JsonFlag = False,
) -> None:
    """Delete a version. Its number is never reused and its history is kept.

    Nothing is asked: without --yes the command only says what it would delete and exits
    with status 2. A version that an alias points at is refused (exit status 4) unless
    --force, which removes those aliases.

    Example:
      loopml models delete churn 2 --yes --reason "trained on leaked data"
    """
    from rich.text import Text

    from loopml import registry
    from loopml.errors import ConflictError, InvalidArgumentError

    uri = _uri(ctx)
    mv = _resolve(name, version, uri)
    if not yes:
        held = f" (it holds the aliases {', '.join(mv.aliases)})" if mv.aliases else ""
        raise InvalidArgumentError(
            f"Deleting {mv.name} version {mv.version}{held} cannot be undone: pass --yes to "
            "delete it.",
            field="yes",
        )
    try:
        registry.delete_version(name, mv.version, force=force, reason=reason, tracking_uri=uri)
    except ConflictError as exc:
        if force or not mv.aliases:
            raise
        raise _refused_with_aliases(mv, "deleting") from exc
    removed = list(mv.aliases) if force else []
    if as_json:
        print_json(
            {"name": mv.name, "version": mv.version, "deleted": True, "removed_aliases": removed}
        )
        return
    line = Text(f"Deleted {mv.name} version {mv.version}.")
    if removed:
        line.append(f" Removed the aliases: {', '.join(removed)}.")
    print_table(line)


# -- models history ----------------------------------------------------------------------------


def describe_event(event: RegistryEvent) -> str:
    """An event in words: ``version 3 registered``, ``alias champion: 2 → 3``..."""
    payload = event.payload
    kind = event.kind.removeprefix("model.")
    version = payload.get("version")
    if kind == "created":
        return "model created"
    if kind == "deleted":
        return "model deleted"
    if kind == "version_created":
        return f"version {version} registered"
    if kind in ("version_archived", "version_restored", "version_deleted"):
        return f"version {version} {kind.removeprefix('version_')}"
    if kind == "alias_set":
        return "alias " + _move(str(payload.get("alias")), version, payload.get("previous"))
    if kind == "alias_deleted":
        text = f"alias {payload.get('alias')} removed (was {payload.get('previous')})"
        doing = payload.get("why")
        if doing:
            text += f" while {doing} version {payload.get('previous')}"
        return text
    return kind.replace("_", " ")


def _history_table(name: str, events: Sequence[RegistryEvent]) -> Table:
    table = _titled(f"History of {name}")
    table.add_column("time", no_wrap=True)
    table.add_column("event", style="bold")
    table.add_column("actor", no_wrap=True)
    table.add_column("reason")
    for event in events:
        table.add_row(
            cell(format_time(event.time)),
            cell(describe_event(event)),
            cell(event.actor),
            cell(event.payload.get("reason") or None),
        )
    return table


@_command("history")
def model_history(ctx: typer.Context, name: Name, as_json: JsonFlag = False) -> None:
    """Show every event of a registered model, oldest first, with who, when and why.

    Events: versions registered, archived, restored and deleted; aliases set and removed. The
    history outlives the model: a deleted model still shows it.

    Example:
      loopml models history churn
    """
    from loopml import registry
    from loopml.errors import ModelNotFoundError

    events = registry.history(name, tracking_uri=_uri(ctx))
    if not events:
        raise ModelNotFoundError(f"No registered model named {name!r}.", name=name)
    if as_json:
        print_json([{**to_jsonable(e), "summary": describe_event(e)} for e in events])
        return
    print_table(_history_table(name, events))


# -- models compare ----------------------------------------------------------------------------


def _read_frame(path: Path) -> Any:
    """A CSV, TSV or Parquet file as a pandas DataFrame."""
    from loopml.data._tables import is_table_file, read_table_file
    from loopml.errors import InvalidArgumentError

    if not is_table_file(path.name):
        raise InvalidArgumentError(
            f"{path.name!r} is not a table file: give a .csv, .tsv or .parquet file.",
            field="data",
        )
    return read_table_file(str(path)).to_pandas()


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, int | float | str)


def _metric_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(float(value), 6)
    return str(value)


def _compare_table(result: Any, label_a: str, label_b: str) -> Table:
    a_metrics: dict[str, Any] = dict(result.a.metrics)
    b_metrics: dict[str, Any] = dict(result.b.metrics)
    table = _titled("Metrics")
    table.add_column("metric", style="bold")
    table.add_column(label_a, justify="right")
    table.add_column(label_b, justify="right")
    table.add_column("difference (b - a)", justify="right")
    for key in [*a_metrics, *(k for k in b_metrics if k not in a_metrics)]:
        a_value, b_value = a_metrics.get(key), b_metrics.get(key)
        if not all(_is_scalar(v) for v in (a_value, b_value)):
            continue  # a confusion matrix and the like: see --json
        diff = None
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (a_value, b_value)
        )
        if numbers:
            diff = format_number(float(b_value) - float(a_value), 6)  # type: ignore[arg-type]
            if not diff.startswith("-") and diff not in ("0", "NaN"):
                diff = "+" + diff
        style = "bold" if key == result.metric else ""
        table.add_row(
            cell(key, style),
            cell(_metric_value(a_value), style),
            cell(_metric_value(b_value), style),
            cell(diff, style),
        )
    return table


def _verdict(result: Any, label_a: str, label_b: str) -> str:
    if result.better == "tie":
        return f"{label_a} and {label_b} tie on {result.metric}."
    winner = label_a if result.better == "a" else label_b
    margin = format_number(abs(float(result.difference)), 4)
    return f"{winner} is better on {result.metric} by {margin}."


@_command("compare")
def compare_versions(
    ctx: typer.Context,
    name: Name,
    version_a: Annotated[
        str,
        typer.Argument(
            help="The first version: a number (3 or v3), an alias or 'latest'.",
            metavar="A",
            show_default=False,
        ),
    ],
    version_b: Annotated[
        str,
        typer.Argument(
            help="The second version: a number (3 or v3), an alias or 'latest'.",
            metavar="B",
            show_default=False,
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A .csv, .tsv or .parquet table holding the features and the target column.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ],
    target: Annotated[
        str,
        typer.Option("--target", help="The column holding the true values.", show_default=False),
    ],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The metric that decides (default: the task's main one, e.g. roc_auc for a "
            "binary classifier, rmse for a regressor).",
            show_default=False,
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="classification or regression (default: inferred from the model and target).",
            show_default=False,
        ),
    ] = None,
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="Allow loading models whose format runs code (pickle): only for models you trust.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate two versions of a model on the same table and say which is better.

    Both versions predict the table's features; their metrics are computed against the
    target column. Prints the metrics of both, the difference (B - A), and a verdict on the
    deciding metric. Exits 0 whichever is better.

    Examples:
      loopml models compare churn champion 4 --data holdout.csv --target churned
      loopml models compare churn 2 3 --data test.parquet --target y --metric f1 --json
    """
    uri = _uri(ctx)
    mv_a, mv_b = _resolve(name, version_a, uri), _resolve(name, version_b, uri)
    frame = _read_frame(data)

    from loopml.models import compare

    result = compare(
        mv_a.uri,
        mv_b.uri,
        frame,
        task=task,
        metric=metric,
        targets=target,
        trusted=trusted,
        tracking_uri=uri,
    )
    label_a, label_b = _label(mv_a, version_a), _label(mv_b, version_b)
    if as_json:
        body = result.to_dict()
        body["a_version"], body["b_version"] = _version_dict(mv_a), _version_dict(mv_b)
        print_json(body)
        return
    from rich.text import Text

    _print_parts(
        [_compare_table(result, label_a, label_b), Text(_verdict(result, label_a, label_b))]
    )
