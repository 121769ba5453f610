"""``loopml experiments``: list, create, archive and restore experiments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli._common import JsonFlag, get_client, print_json, print_table
from loopml.cli._format import cell, format_time

if TYPE_CHECKING:
    from rich.table import Table

    from loopml.entities import Experiment

app = typer.Typer(help="Create, list, archive and restore experiments.", no_args_is_help=True)

NameOrId = Annotated[
    str,
    typer.Argument(
        help="The experiment's name (or its id).", metavar="NAME_OR_ID", show_default=False
    ),
]


def _table(experiments: list[Experiment], *, show_stage: bool) -> Table:
    from rich.table import Table

    table = Table(title="Experiments", title_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", style="bold")
    if show_stage:
        table.add_column("stage")
    table.add_column("created", no_wrap=True)
    table.add_column("description")
    for exp in experiments:
        row = [cell(exp.experiment_id), cell(exp.name)]
        if show_stage:
            stage = exp.lifecycle_stage.value
            row.append(cell(stage, "dim" if stage == "archived" else ""))
        row += [cell(format_time(exp.creation_time)), cell(exp.description or None)]
        table.add_row(*row)
    return table


@app.command("ls")
def list_experiments(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Include archived experiments.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List experiments (active ones unless --all)."""
    experiments = get_client(ctx).search_experiments(include_archived=show_all)
    if as_json:
        print_json(experiments)
    else:
        print_table(_table(experiments, show_stage=show_all))


@app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name no other experiment has.", metavar="NAME")],
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the experiment is about.")
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an experiment."""
    experiment_id = get_client(ctx).create_experiment(name, description)
    if as_json:
        print_json({"experiment_id": experiment_id, "name": name})
    else:
        print(f"Created experiment {name!r} (id {experiment_id}).")


def _set_stage(ctx: typer.Context, name_or_id: str, *, archive: bool, as_json: bool) -> None:
    client = get_client(ctx)
    experiment = client.resolve_experiment(name_or_id)
    if archive:
        experiment = client.archive_experiment(experiment.experiment_id)
    else:
        experiment = client.restore_experiment(experiment.experiment_id)
    if as_json:
        print_json(experiment)
    else:
        done = "Archived" if archive else "Restored"
        print(f"{done} experiment {experiment.name!r} (id {experiment.experiment_id}).")


@app.command("archive")
def archive_experiment(ctx: typer.Context, name_or_id: NameOrId, as_json: JsonFlag = False) -> None:
    """Archive an experiment: `experiments ls` hides it (unless --all); nothing is deleted."""
    _set_stage(ctx, name_or_id, archive=True, as_json=as_json)


@app.command("restore")
def restore_experiment(ctx: typer.Context, name_or_id: NameOrId, as_json: JsonFlag = False) -> None:
    """Restore an archived experiment."""
    _set_stage(ctx, name_or_id, archive=False, as_json=as_json)
