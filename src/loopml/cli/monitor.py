"""``loopml monitor``: drift and data quality of production data against a reference.

``loopml monitor compare REFERENCE CURRENT`` compares two ad-hoc tables (CSV, TSV or Parquet
files) with no store and no server: one :func:`loopml.monitoring.compare` call, rendered.
``loopml.monitoring`` (numpy, pyarrow) is imported inside the command, so ``loopml --help``
stays fast.

Exit codes follow :mod:`loopml.cli._common`: 0 whether or not a column drifted (drift is a
finding, not a failure), unless ``--fail-on-drift`` asks for 1 when any column drifted; 2 for
bad input (an unreadable file, an unknown column, a bad threshold).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli._common import EXIT_ERROR, JsonFlag, message, print_json
from loopml.cli._format import cell, format_number
from loopml.cli._format import print_parts as _print_parts
from loopml.cli._format import reflow as _reflow
from loopml.cli._format import titled_table as _titled

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import RenderableType
    from rich.table import Table

    from loopml.monitoring import ColumnDrift, DriftResult, QualityFinding

app = typer.Typer(
    help="Monitor models in production: drift and data quality against a reference.",
    no_args_is_help=True,
)

#: `loopml monitor compare --fail-on-drift` exits with this code when a column drifted
EXIT_DRIFT = EXIT_ERROR

STATUS_STYLES = {
    "drift": "bold red",
    "ok": "green",
    "insufficient_data": "yellow",
    "constant": "yellow",
    "all_missing": "yellow",
    "wrong_type": "bold yellow",
}
MEASURE_LABELS = {
    "wasserstein": "Wasserstein",
    "psi": "PSI",
    "ks": "KS",
    "jensen_shannon": "JS",
    "cohen_h": "Cohen's h",
}


def _command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command(name)`` with the docstring reflowed into the help text."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        return app.command(name, help=_reflow(func.__doc__))(func)

    return register


def _num(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else format_number(float(value), digits)


def _pvalue(value: float | None) -> str | None:
    if value is None:
        return None
    if value == 0:
        return "<1e-300"
    if value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3f}"


def _effect(column: ColumnDrift) -> str | None:
    if column.effect_measure is None:
        return None
    label = MEASURE_LABELS.get(column.effect_measure, column.effect_measure)
    return f"{label} {_num(column.effect)}"


def _drift_table(result: DriftResult, title: str) -> Table:
    table = _titled(title)
    table.caption = (
        f"drift: effect >= {format_number(result.rule.threshold)} and p < "
        f"{format_number(result.rule.alpha)}/{max(result.tested, 1)} columns tested "
        "(effects in standard-deviation units: Wasserstein for numbers, Cohen's h for "
        "categories)"
    )
    table.caption_justify = "left"
    table.add_column("column", style="bold")
    table.add_column("kind")
    table.add_column("status", no_wrap=True)
    table.add_column("effect", justify="right", no_wrap=True)
    table.add_column("p-value", justify="right", no_wrap=True)
    table.add_column("PSI", justify="right", no_wrap=True)
    table.add_column("JS", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold", max_width=60)
    for column in result.columns:
        kind = column.kind + (" (output)" if column.role == "prediction" else "")
        table.add_row(
            cell(column.column),
            cell(kind),
            cell(column.status, STATUS_STYLES.get(column.status, "")),
            cell(_effect(column)),
            cell(_pvalue(column.pvalue)),
            cell(_num(column.measures.get("psi"))),
            cell(_num(column.measures.get("jensen_shannon"))),
            cell(column.reason),
        )
    return table


def _quality_table(findings: Sequence[QualityFinding]) -> Table:
    table = _titled(f"Data quality ({len(findings)} finding{'s' if len(findings) != 1 else ''})")
    table.add_column("column", style="bold")
    table.add_column("finding", no_wrap=True)
    table.add_column("detail", overflow="fold", max_width=80)
    for finding in findings:
        table.add_row(cell(finding.column), cell(finding.kind, "yellow"), cell(finding.message))
    return table


def _headline(result: DriftResult, reference: Path, current: Path) -> RenderableType:
    from rich.text import Text

    flagged = result.flagged
    head = Text.assemble(
        (reference.name, "bold"),
        f" ({result.reference_rows:,} rows) vs ",
        (current.name, "bold"),
        f" ({result.current_rows:,} rows): ",
    )
    if result.status == "drift":
        head.append(
            f"{len(flagged)} of {len(result.columns)} columns drifted ({', '.join(flagged)})",
            style="bold red",
        )
    elif result.status == "ok":
        head.append(f"no drift in {result.tested} columns tested", style="green")
    else:
        head.append("no column could be tested (see the reasons)", style="yellow")
    untested = len(result.columns) - result.tested
    if untested and result.tested:
        head.append(f"; {untested} not tested", style="yellow")
    return head


@_command("compare")
def compare_tables(
    reference: Annotated[
        Path,
        typer.Argument(
            help="The reference table (e.g. the training data): .csv, .tsv or .parquet.",
            metavar="REFERENCE",
            show_default=False,
        ),
    ],
    current: Annotated[
        Path,
        typer.Argument(
            help="The table to check against it: .csv, .tsv or .parquet.",
            metavar="CURRENT",
            show_default=False,
        ),
    ],
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            "-c",
            help="Compare only this column (repeat for more). [default: every column]",
            show_default=False,
        ),
    ] = None,
    predictions: Annotated[
        list[str] | None,
        typer.Option(
            "--prediction",
            "-p",
            help="A model-output column, reported as prediction drift (repeat for more). "
            "[default: the columns named output.*]",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(help="Smallest effect size that counts as drift (standard deviations)."),
    ] = 0.05,
    alpha: Annotated[
        float, typer.Option(help="Family-wise significance level, split over the columns.")
    ] = 0.05,
    min_rows: Annotated[
        int, typer.Option(help="Fewer values than this: insufficient data, no verdict.")
    ] = 100,
    bins: Annotated[int, typer.Option(help="Quantile buckets per numeric column.")] = 20,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact", help="Also run the exact Kolmogorov-Smirnov test (sorts every column)."
        ),
    ] = False,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when any column drifted.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare two tables: drift and data quality of CURRENT against REFERENCE.

    Each column gets a verdict: drift when its effect size reaches --threshold (the normalized
    Wasserstein distance for numbers, Cohen's h for categories, both in standard deviations)
    and its test (binned Kolmogorov-Smirnov, chi-square) has p < --alpha divided by the number
    of columns tested. Columns that cannot be tested say why (insufficient_data, all_missing,
    constant, wrong_type). Data quality lists missing-rate changes, values out of the
    reference's range, unseen categories and values of the wrong type.

    Exit status: 0 whether or not a column drifted (1 with --fail-on-drift when one did);
    2 for bad input.

    Examples:
      loopml monitor compare train.parquet today.csv
      loopml monitor compare train.csv batch.csv -c age -c plan --json
      loopml monitor compare train.parquet preds.parquet -p output.score --fail-on-drift
    """
    from loopml.monitoring import DriftRule, compare

    rule = DriftRule(threshold=threshold, alpha=alpha, min_rows=min_rows)
    result = compare(
        reference,
        current,
        columns=columns or None,
        predictions=predictions or None,
        rule=rule,
        bins=bins,
        exact=exact,
    )
    if as_json:
        print_json(result.to_dict())
    else:
        parts: list[RenderableType] = [
            _headline(result, reference, current),
            _drift_table(result, "Drift"),
        ]
        if result.quality:
            parts.append(_quality_table(result.quality))
        _print_parts(parts)
        if result.ignored:
            message(f"Not in the reference, not compared: {', '.join(result.ignored)}", style="dim")
    if fail_on_drift and result.has_drift:
        raise typer.Exit(EXIT_DRIFT)
