"""``loopml artifacts``: list and download the files a run logged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli._common import JsonFlag, get_client, message, print_json, print_table
from loopml.cli._format import cell, format_size

app = typer.Typer(help="List and download a run's artifacts.", no_args_is_help=True)

RunId = Annotated[
    str,
    typer.Argument(help="The run's id (32 hex characters).", metavar="RUN_ID", show_default=False),
]
ArtifactPath = Annotated[
    str,
    typer.Argument(
        help="A file or folder among the run's artifacts (default: all of them).",
        metavar="PATH",
        show_default=False,
    ),
]


def _short_digest(digest: str | None) -> str | None:
    """``blake3:48631390098a`` for a full ``algorithm:hex`` digest (full one in --json)."""
    if digest is None:
        return None
    algorithm, _, hexdigest = digest.rpartition(":")
    return f"{algorithm}:{hexdigest[:12]}" if algorithm else hexdigest[:12]


@app.command("ls")
def list_artifacts(
    ctx: typer.Context,
    run_id: RunId,
    path: ArtifactPath = "",
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="List every file below PATH.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List the files and folders directly under PATH (every file with --recursive)."""
    from rich.table import Table

    artifacts = get_client(ctx).list_artifacts(run_id, path, recursive=recursive)
    if as_json:
        print_json(artifacts)
        return
    if not artifacts:
        where = f" under {path!r}" if path else ""
        message(f"Run {run_id} has no artifacts{where}.")
        return
    table = Table(title="Artifacts", title_justify="left")
    table.add_column("path", style="bold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("digest", style="dim", no_wrap=True)
    for info in artifacts:
        name = info.path + "/" if info.is_dir else info.path
        digest = _short_digest(info.digest)
        table.add_row(
            cell(name, "blue" if info.is_dir else ""), cell(format_size(info.size)), cell(digest)
        )
    print_table(table)


@app.command("get")
def get_artifacts(
    ctx: typer.Context,
    run_id: RunId,
    path: ArtifactPath = "",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The folder to download into (created if needed; default: a new temp folder).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download a file or folder of artifacts, verified by hash; print where it went."""
    local = get_client(ctx).download_artifacts(run_id, path, output)
    print(local)
