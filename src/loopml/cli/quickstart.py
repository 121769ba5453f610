"""``loopml quickstart``: train a few real models into a store, then show what to try next."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli._common import JsonFlag, get_state, message, print_json, print_table
from loopml.cli._format import cell, format_number

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.table import Table

    from loopml.entities import ModelVersion, RegisteredModel, Run
    from loopml.quickstart import ServingDemo

SHOWN_METRICS = ("accuracy", "f1", "roc_auc")
#: requests the serving stage sends
REQUESTS = 300


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr, moved one step per message after the first.

    When stderr is not a terminal (a log file, CI), each message is one plain line instead.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield message
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("Starting", total=total)
        calls = 0

        def advance(text: str) -> None:
            nonlocal calls
            bar.update(task, description=text, advance=1 if calls else 0)
            calls += 1

        yield advance
        bar.update(task, completed=total)


def _summary(runs: list[Run]) -> Table:
    """The parent (with its best child's scores) and, indented below it, its children."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="Quickstart runs",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("name", style="bold", no_wrap=True)
    for key in SHOWN_METRICS:
        table.add_column(key, justify="right", no_wrap=True)
    table.add_column("run id", style="dim", no_wrap=True)
    for run in runs:
        is_parent = run.info.parent_run_id is None
        metrics = run.data.metrics
        values = [metrics.get(f"best_{key}" if is_parent else key) for key in SHOWN_METRICS]
        table.add_row(
            cell(run.info.run_name if is_parent else f"└ {run.info.run_name}"),
            *(cell(None if v is None else format_number(v)) for v in values),
            cell(run.info.run_id),
        )
    best = runs[0].data.tags.get("best_model")
    if best:
        table.caption = f"The parent shows the scores of its best child, {best}."
    return table


def _serving_table(demo: ServingDemo) -> Table:
    """What the served champion answered, from the client, /metrics and the prediction log."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"Served models:/breast-cancer-classifier@champion (v{demo.version}) at {demo.url}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_header=False,
    )
    table.add_column("what", style="bold")
    table.add_column("value")
    rows = [
        ("requests answered", f"{demo.answered} of {demo.requests}, 16 at a time"),
        ("accuracy of the answers", f"{demo.accuracy:.3f} (test split)"),
        ("latency p50 / p99", f"{demo.p50_ms:.1f} ms / {demo.p99_ms:.1f} ms"),
        (
            "predict calls (batching)",
            f"{demo.predict_calls} calls for {int(demo.metrics['rows_predicted'])} rows",
        ),
        ("a request that does not fit", demo.refusal),
        ("prediction log", f"{demo.logged_rows} rows in {demo.segments} Parquet segment(s)"),
    ]
    mon = demo.monitor
    if mon:
        before, after = mon["before"], mon["after"]
        rows += [
            (
                "monitor, normal traffic",
                f"{before['status']} (drifted: {', '.join(before['drifted']) or 'none'})",
            ),
            ("then shifted", ", ".join(mon["shifted"])),
            (
                "monitor, with the shift",
                f"{after['status']}: drifted {', '.join(after['drifted']) or 'none'}",
            ),
        ]
        rows += [("alert", reason) for reason in after["alerts"][:6]]
    for what, value in rows:
        table.add_row(what, value)
    return table


def _registry_table(model: RegisteredModel, versions: list[ModelVersion]) -> Table:
    """The registered model after the quickstart: its versions and where each alias points."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"Model registry: {model.name}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("version", justify="right")
    table.add_column("aliases", style="bold")
    table.add_column("flavor")
    table.add_column("trained in run", style="dim", no_wrap=True)
    for version in versions:
        table.add_row(
            cell(version.version),
            cell(", ".join(version.aliases) or None),
            cell(version.flavor),
            cell(version.run_id),
        )
    return table


def _next_steps(runs: list[Run], experiment: str, tracking_uri: str | None) -> list[str]:
    base = "loopml" + (f" -t {shlex.quote(tracking_uri)}" if tracking_uri else "")
    exp = shlex.quote(experiment)
    parent, children = runs[0], runs[1:]
    best = parent.data.tags.get("best_run_id", children[-1].info.run_id)
    forest = next(
        (r for r in children if r.data.params.get("model") == "random_forest"), children[-1]
    )
    ids = " ".join(r.info.run_id for r in children[:2])
    dataset = shlex.quote(parent.data.params.get("dataset", "breast-cancer"))
    model = "breast-cancer-classifier"
    return [
        f"{base} data show {dataset}",
        f"{base} models show {model}",
        f"{base} models history {model}",
        f"{base} runs ls {exp}",
        f'{base} runs ls {exp} --filter "metrics.roc_auc > 0.99" --order-by "metrics.roc_auc DESC"',
        f"{base} runs compare {ids}",
        f"{base} runs show {best}",
        f"{base} runs history {forest.info.run_id} roc_auc",
        f"{base} artifacts ls {best} --recursive",
        f"{base} artifacts get {best} -o ./artifacts",
        f"{base} serve models:/{model}@champion --port 8080",
        f"{base} deploy docker models:/{model}@champion -o build/",
        f"{base} monitor status quickstart-champion",
        f"{base} monitor report quickstart-champion report.html",
    ]


def quickstart(
    ctx: typer.Context,
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", help="The experiment to put the runs in.")
    ] = "quickstart",
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Also serve the champion on a free local port and send it requests.",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Version and validate a dataset, train four real scikit-learn models on it as tracked
    runs, register the best, serve it and send it traffic, then show it all.

    Uses the breast cancer dataset bundled with scikit-learn (no download), stored as the
    dataset version breast-cancer@vN with validation rules attached; then two logistic
    regressions and two random forests, nested under one parent run, each recording the
    dataset version it used, with params, metrics, a confusion matrix, feature importances,
    a ROC-curve image and the model itself; the best one is registered as
    breast-cancer-classifier and its champion alias is pointed at it. The champion is then
    served (loopml serve, in this process, on a free port), sent a few hundred requests and
    one it must refuse; its metrics and its prediction log are read back.
    """
    from loopml.quickstart import STEPS, run_quickstart, serve_champion

    tracking_uri = get_state(ctx).tracking_uri
    demo = None
    with _progress_bar(STEPS + (1 if serve else 0)) as progress:
        runs = run_quickstart(experiment, tracking_uri=tracking_uri, progress=progress)
        if serve:
            progress(f"Serving the champion and sending it {REQUESTS} requests")
            demo = serve_champion(tracking_uri=tracking_uri, requests=REQUESTS)
    if as_json:
        import dataclasses

        serving = None if demo is None else dataclasses.asdict(demo)
        print_json({"runs": runs, "serving": serving})
        return
    print_table(_summary(runs))
    from loopml import registry
    from loopml.quickstart import MODEL

    model = registry.get_model(MODEL, tracking_uri=tracking_uri)
    print()
    print_table(_registry_table(model, registry.list_versions(MODEL, tracking_uri=tracking_uri)))
    print(f'\nLoad the champion anywhere: loopml.models.load("models:/{MODEL}@champion")')
    if demo is not None:
        print()
        print_table(_serving_table(demo))
    print("\nNext, try:")
    for command in _next_steps(runs, experiment, tracking_uri):
        print(f"  {command}")
