"""``loopml runs``: search, show, compare runs and read a metric's history."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli._common import (
    JsonFlag,
    get_client,
    message,
    print_json,
    print_table,
    widest_fitting,
)
from loopml.cli._format import (
    cell,
    format_ago,
    format_number,
    format_size,
    format_time,
    run_duration,
    status_cell,
)

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from loopml.entities import ArtifactInfo, DatasetInput, Experiment, Metric, Run

app = typer.Typer(help="Search, show and compare runs.", no_args_is_help=True)

#: at most this many metric and param columns in `runs ls` (the rest are in --json / show)
MAX_METRIC_COLUMNS = 4
MAX_PARAM_COLUMNS = 3

RunId = Annotated[
    str,
    typer.Argument(help="The run's id (32 hex characters).", metavar="RUN_ID", show_default=False),
]


# -- runs ls -----------------------------------------------------------------------------------


def _query_keys(filter_string: str | None, order_by: Sequence[str] | None) -> dict[str, list[str]]:
    """The metric and param keys a (valid) filter and order-by mention, in order."""
    from loopml.storage import search

    keys: dict[str, list[str]] = {"metric": [], "param": []}
    terms: list[search.Comparison | search.OrderBy] = [
        *search.parse_order_by(order_by),
        *search.parse_filter(filter_string),
    ]
    for term in terms:
        if term.kind in keys and term.key not in keys[term.kind]:
            keys[term.kind].append(term.key)
    return keys


def _header(top: str, bottom: str) -> Text:
    from rich.text import Text

    return Text.assemble(top, "\n", (bottom, "dim"))


def _column_keys(runs: Sequence[Run], preferred: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The optional columns, most important first: (kind, key) pairs, then the parent.

    Keys the query names come first, then the keys most runs have (metrics before params on
    a tie), at most MAX_METRIC_COLUMNS metrics and MAX_PARAM_COLUMNS params.
    """
    counts = {
        "metric": Counter(key for run in runs for key in run.data.metrics),
        "param": Counter(key for run in runs for key in run.data.params),
    }
    limits = {"metric": MAX_METRIC_COLUMNS, "param": MAX_PARAM_COLUMNS}
    named = [(kind, key) for kind in counts for key in preferred[kind] if key in counts[kind]]
    ranked = sorted(
        ((kind, key) for kind in counts for key in counts[kind]),
        key=lambda column: (-counts[column[0]][column[1]], column[0] != "metric", column[1]),
    )
    columns: list[tuple[str, str]] = []
    for kind, key in named + ranked:
        taken = sum(1 for c in columns if c[0] == kind)
        if (kind, key) not in columns and (taken < limits[kind] or (kind, key) in named):
            columns.append((kind, key))
    if any(r.info.parent_run_id for r in runs):
        columns.append(("parent", ""))
    return columns


def _runs_table(
    experiment: Experiment, runs: Sequence[Run], columns: list[tuple[str, str]]
) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    names = {r.info.run_id: r.info.run_name for r in runs}
    nested = ("parent", "") in columns
    keys = sorted((c for c in columns if c[0] != "parent"), key=lambda c: c[0] != "metric")
    table = Table(
        title=Text(f"Runs of {experiment.name!r}"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("run id", no_wrap=True, style="dim")
    table.add_column("name", style="bold")
    if nested:
        table.add_column("parent")
    table.add_column("status", no_wrap=True)
    table.add_column("start", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for kind, key in keys:
        table.add_column(_header(key, kind), justify="right" if kind == "metric" else "left")
    for run in runs:
        info = run.info
        row = [cell(info.run_id), cell(info.run_name)]
        if nested:
            parent = info.parent_run_id
            row.append(cell(names.get(parent, parent[:8] + "…") if parent else None))
        row += [
            status_cell(info.status),
            cell(format_ago(info.start_time)),
            cell(run_duration(info)),
        ]
        for kind, key in keys:
            if kind == "metric":
                row.append(_metric_cell(run.data.metrics.get(key)))
            else:
                row.append(cell(run.data.params.get(key)))
        table.add_row(*row)
    return table


def _metric_cell(value: float | None, digits: int = 4) -> Text:
    return cell(None if value is None else format_number(value, digits))


@app.command("ls")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        str, typer.Argument(help="The experiment's name (or id).", metavar="EXPERIMENT")
    ],
    filter_string: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            help="Keep runs that match, e.g. \"metrics.accuracy > 0.9 and params.model = 'rf'\".",
            show_default=False,
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            help="Sort key, e.g. 'metrics.accuracy DESC'; repeat for more keys.",
            show_default=False,
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", min=1, help="At most this many runs.")
    ] = 100,
    page_token: Annotated[
        str | None,
        typer.Option(
            "--page-token", help="Continue a listing (the token --json prints).", show_default=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the runs of an experiment, newest first unless --order-by says otherwise.

    The filter grammar: clauses `identifier operator value` joined with AND, where the
    identifier is metrics.KEY, params.KEY, tags.KEY or a run attribute (status, run_name,
    start_time, ...). See loopml.storage.search for the full grammar.
    """
    client = get_client(ctx)
    exp = client.resolve_experiment(experiment)
    runs = client.search_runs(exp.experiment_id, filter_string, order_by, max_results, page_token)
    if as_json:
        print_json({"runs": list(runs), "next_page_token": runs.next_page_token})
        return
    if not runs:
        message(
            f"No runs in experiment {exp.name!r}" + (" match the filter." if filter_string else ".")
        )
        return
    columns = _column_keys(runs, _query_keys(filter_string, order_by))
    table, shown = widest_fitting(lambda n: _runs_table(exp, runs, columns[:n]), len(columns))
    print_table(table)
    every = {("metric", k) for r in runs for k in r.data.metrics}
    every |= {("param", k) for r in runs for k in r.data.params}
    hidden = len(every) - len([c for c in columns[:shown] if c[0] != "parent"])
    if hidden > 0:
        message(
            f"{hidden} more metric/param column{'s' if hidden > 1 else ''} not shown: "
            "see `loopml runs show RUN_ID` or --json.",
            style="dim",
        )
    if runs.next_page_token:
        message(f"More runs: add --page-token {runs.next_page_token}", style="dim")


# -- runs show ---------------------------------------------------------------------------------


def _key_value_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(title), title_justify="left", show_header=False, box=None, padding=(0, 2)
    )
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value")
    for key, value in rows:
        table.add_row(cell(key), value if not isinstance(value, str) else cell(value))
    return table


def _overview(run: Run, experiment_name: str) -> Table:
    info, source = run.info, run.info.source
    git = source.git_commit
    if git and source.git_dirty:
        git += " (uncommitted changes)"
    packages = ", ".join(f"{name}=={version}" for name, version in sorted(source.packages.items()))
    rows: list[tuple[str, object]] = [
        ("run id", info.run_id),
        ("name", info.run_name),
        ("experiment", f"{experiment_name} (id {info.experiment_id})"),
        ("status", status_cell(info.status)),
        ("start", format_time(info.start_time)),
        ("end", format_time(info.end_time)),
        ("duration", run_duration(info)),
        ("parent run", cell(info.parent_run_id)),
        ("user", cell(source.user)),
        ("host", cell(source.host)),
        ("entry point", cell(source.entry_point)),
        ("git commit", cell(git)),
        ("python", cell(source.python_version)),
        ("packages", cell(packages or None)),
    ]
    if info.error:
        rows.append(("error", cell(info.error.strip().splitlines()[-1], "red")))
    return _key_value_table(f"Run {info.run_name}", rows)


def _metrics_table(latest: dict[str, Metric]) -> Table:
    from rich.table import Table

    table = Table(title="Metrics (latest values)", title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value", justify="right")
    table.add_column("step", justify="right")
    table.add_column("logged", no_wrap=True)
    for key in sorted(latest):
        point = latest[key]
        table.add_row(
            cell(key),
            cell(format_number(point.value, 10)),
            cell(point.step),
            cell(format_time(point.timestamp)),
        )
    return table


def _artifacts_table(artifacts: list[ArtifactInfo]) -> Table:
    from rich.table import Table

    table = Table(title="Artifacts", title_justify="left")
    table.add_column("path", style="bold")
    table.add_column("size", justify="right", no_wrap=True)
    for info in artifacts:
        table.add_row(cell(info.path), cell(format_size(info.size)))
    return table


def _inputs_table(inputs: list[DatasetInput]) -> Table:
    from rich.table import Table

    table = Table(title="Dataset inputs", title_justify="left")
    table.add_column("dataset", style="bold", no_wrap=True)
    table.add_column("context")
    table.add_column("logged", no_wrap=True)
    for used in inputs:
        table.add_row(cell(used.ref), cell(used.context), cell(format_time(used.time)))
    return table


@app.command("show")
def show_run(ctx: typer.Context, run_id: RunId, as_json: JsonFlag = False) -> None:
    """Show a run: info and source, params, latest metrics, tags, dataset inputs, artifacts."""
    client = get_client(ctx)
    run = client.get_run(run_id)
    artifacts = client.list_artifacts(run_id, recursive=True)
    inputs = client.list_inputs(run_id)
    if as_json:
        print_json({"info": run.info, "data": run.data, "inputs": inputs, "artifacts": artifacts})
        return
    experiment = client.get_experiment(run.info.experiment_id)
    data = run.data
    parts: list[Table] = [_overview(run, experiment.name)]
    if data.params:
        parts.append(_key_value_table("Params", [(k, data.params[k]) for k in sorted(data.params)]))
    if data.latest_metrics:
        parts.append(_metrics_table(data.latest_metrics))
    if data.tags:
        parts.append(_key_value_table("Tags", [(k, data.tags[k]) for k in sorted(data.tags)]))
    if inputs:
        parts.append(_inputs_table(inputs))
    if artifacts:
        parts.append(_artifacts_table(artifacts))
    for index, part in enumerate(parts):
        if index:
            print()
        print_table(part)


# -- runs compare ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One row of `runs compare`: a key and its value in each run (``None`` where absent)."""

    key: str
    values: list[str | float | None]
    differs: bool


def _same(values: Sequence[object]) -> bool:
    def norm(value: object) -> object:
        return "NaN" if isinstance(value, float) and math.isnan(value) else value

    return len({repr(norm(v)) for v in values}) <= 1


def _comparison_rows(mappings: Sequence[Mapping[str, str | float]]) -> list[Comparison]:
    keys = sorted({key for mapping in mappings for key in mapping})
    rows = []
    for key in keys:
        values = [mapping.get(key) for mapping in mappings]
        rows.append(Comparison(key, values, not _same(values)))
    return rows


def _comparison_table(
    runs: list[Run], params: list[Comparison], metrics: list[Comparison]
) -> Table:
    from rich.table import Table

    table = Table(title="Run comparison", title_justify="left", caption="* = values differ")
    table.add_column("", style="bold")
    for run in runs:
        table.add_column(_header(run.info.run_name, run.info.run_id[:8]), justify="right")
    table.add_row(cell("status"), *(status_cell(r.info.status) for r in runs))
    table.add_row(cell("duration"), *(cell(run_duration(r.info)) for r in runs), end_section=True)
    for kind, rows in (("param", params), ("metric", metrics)):
        for index, row in enumerate(rows):
            style = "bold yellow" if row.differs else "dim"
            marker = "* " if row.differs else "  "
            values = [format_number(v, 10) if isinstance(v, float) else v for v in row.values]
            table.add_row(
                cell(f"{marker}{kind} {row.key}"),
                *(cell(v, style) for v in values),
                end_section=index == len(rows) - 1,
            )
    return table


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str], typer.Argument(help="Two or more run ids.", metavar="RUN_ID", show_default=False)
    ],
    as_json: JsonFlag = False,
) -> None:
    """Compare runs side by side: one column per run, a row per param and metric."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids to compare.", param_hint="RUN_IDS")
    client = get_client(ctx)
    runs = [client.get_run(run_id) for run_id in run_ids]
    params = _comparison_rows([run.data.params for run in runs])
    metrics = _comparison_rows([run.data.metrics for run in runs])
    if as_json:
        summary = [
            {"run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status}
            for r in runs
        ]
        print_json({"runs": summary, "params": params, "metrics": metrics})
        return
    print_table(_comparison_table(runs, params, metrics))


# -- runs history ------------------------------------------------------------------------------


@app.command("history")
def metric_history(
    ctx: typer.Context,
    run_id: RunId,
    key: Annotated[str, typer.Argument(help="The metric's key.", metavar="KEY")],
    as_json: JsonFlag = False,
) -> None:
    """Every logged point of one metric of a run, by step."""
    from rich.table import Table
    from rich.text import Text

    history = get_client(ctx).get_metric_history(run_id, key)
    if as_json:
        print_json(history)
        return
    if not history:
        message(f"Run {run_id} has no points of metric {key!r}.")
        return
    table = Table(title=Text(f"Metric {key!r}"), title_justify="left")
    table.add_column("step", justify="right")
    table.add_column("value", justify="right")
    table.add_column("logged", no_wrap=True)
    for point in history:
        table.add_row(
            cell(point.step),
            cell(format_number(point.value, 10)),
            cell(format_time(point.timestamp)),
        )
    print_table(table)
