"""The ``loopml`` command line: one sub-app per command group, each command one library call.

Importing this package stays light (no store, no scikit-learn, no matplotlib): commands import
what they need when they run, so ``loopml --help`` is fast. Exit codes are mapped in one place,
:mod:`loopml.cli._common`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from loopml._version import __version__
from loopml.cli import (
    artifacts,
    data,
    deploy,
    experiments,
    models,
    monitor,
    monitors,
    quickstart,
    runs,
    serve,
    server,
    tokens,
)
from loopml.cli._common import LoopmlGroup, State
from loopml.cli._format import reflow

__all__ = ["app", "main"]

app = typer.Typer(
    name="loopml",
    cls=LoopmlGroup,
    help="loopml: track experiments and runs, and inspect what they logged.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(tokens.app, name="tokens")
app.add_typer(deploy.app, name="deploy")
monitors.register(monitor.app)
app.add_typer(monitor.app, name="monitor")
app.command("quickstart")(quickstart.quickstart)
app.command("server")(server.server)
app.command("serve", help=reflow(serve.serve.__doc__))(serve.serve)


def _print_version(value: bool) -> None:
    if value:
        print(f"loopml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            "-t",
            help="Where runs are tracked: a folder, sqlite:///FILE or postgresql://... "
            "[default: $LOOPML_TRACKING_URI, else ./.loopml]",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    ctx.obj = State(tracking_uri=tracking_uri, debug=debug)


def main() -> None:
    """The console-script entry point."""
    app(prog_name="loopml")
