"""``loopml monitor create / ls / check / status / report``: monitors over a served model's
prediction log (one library call each, in :mod:`loopml.monitoring.monitors` and
:mod:`loopml.monitoring.report`). They are registered on the ``loopml monitor`` group of
:mod:`loopml.cli.monitor` (which also has ``compare``).

``check`` exits 0 whatever it finds (a drift is a finding), unless ``--fail-on-alert`` asks
for 1 when the window breaches a rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli._common import EXIT_ERROR, JsonFlag, get_state, message, print_json, print_table
from loopml.cli._format import cell, format_number, format_time, reflow, titled_table

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["register"]

_STYLES = {"ok": "green", "drift": "bold yellow", "alert": "bold red", "insufficient_data": "dim"}


def _window_table(summary: dict[str, Any]) -> Table:
    table = titled_table(
        f"{summary['monitor']}: {format_time(summary['window_start'])} to "
        f"{format_time(summary['window_end'])}"
    )
    for name in ("column", "role", "status", "effect", "PSI", "p-value", "why"):
        table.add_column(name)
    for column in (summary.get("drift") or {}).get("columns", []):
        measures = column.get("measures") or {}
        status = str(column.get("status"))
        table.add_row(
            cell(column.get("column")),
            cell(column.get("role")),
            cell(status, "bold red" if status == "drift" else ""),
            cell(format_number(column["effect"]) if column.get("effect") is not None else None),
            cell(format_number(measures["psi"]) if measures.get("psi") is not None else None),
            cell(f"{column['pvalue']:.2g}" if column.get("pvalue") is not None else None),
            cell(column.get("reason")),
        )
    return table


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    status = summary["status"]
    lines = [f"[{_STYLES.get(status, '')}]{status}[/]: {summary['rows']} predictions in the window"]
    if status == "insufficient_data":
        lines.append("not enough data for a verdict (min_rows); no drift is claimed")
        return lines
    drifted = summary.get("drifted_features") or []
    lines.append(f"drifted features: {', '.join(drifted) if drifted else 'none'}")
    if summary.get("prediction_drift"):
        lines.append("the model's predictions drifted")
    perf = {k: v for k, v in (summary.get("performance") or {}).items() if v is not None}
    if perf:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in perf.items())
        lines.append(f"performance ({summary.get('labelled_rows', 0)} labelled): {shown}")
    for alert in summary.get("alerts") or []:
        lines.append(f"[bold red]alert[/] {alert['reason']}")
    for key in summary.get("opened") or []:
        lines.append(f"opened: {key}")
    for key in summary.get("resolved") or []:
        lines.append(f"[green]resolved[/]: {key}")
    return lines


def create_monitor(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor's name.", show_default=False)],
    model: Annotated[
        str, typer.Option("--model", "-m", help="The served model (its endpoint name).")
    ],
    reference: Annotated[
        str, typer.Option("--reference", "-r", help="A dataset version, e.g. customers@v3.")
    ],
    window: Annotated[
        str, typer.Option(help="Window length (15m, 1h, 1d...) or count ('5000 rows').")
    ] = "1h",
    lateness: Annotated[
        str | None,
        typer.Option(help="How long the log takes to arrive: checks end this long ago."),
    ] = None,
    horizon: Annotated[
        str | None, typer.Option(help="How far back late predictions are looked for [7d].")
    ] = None,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="A drift bound MEASURE=VALUE (psi=0.2), repeatable."),
    ] = None,
    performance: Annotated[
        list[str] | None,
        typer.Option(help="A performance bound METRIC=VALUE (f1=0.8), repeatable."),
    ] = None,
    drift_share: Annotated[
        float | None, typer.Option(help="Alert when this share of features drifted.")
    ] = None,
    min_rows: Annotated[int, typer.Option(help="Fewer predictions: insufficient data.")] = 100,
    target: Annotated[
        str, typer.Option(help="The reference's target column (prediction drift).")
    ] = "target",
    quality: Annotated[bool, typer.Option(help="Alert on data-quality findings.")] = False,
    webhook: Annotated[
        list[str] | None, typer.Option(help="POST alerts to this URL, repeatable.")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Allow a webhook host that is internal (e.g. 127.0.0.1)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a monitor of a served model's predictions against a reference dataset."""
    from loopml import monitoring

    def pairs(values: list[str] | None, option: str) -> dict[str, float]:
        out = {}
        for value in values or []:
            key, sep, number = value.partition("=")
            try:
                out[key.strip()] = float(number)
            except ValueError:
                sep = ""
            if not sep:
                from loopml.errors import InvalidArgumentError

                raise InvalidArgumentError(
                    f"--{option} takes NAME=NUMBER, not {value!r}.", field=option
                )
        return out

    monitor = monitoring.create(
        name,
        model=model,
        reference=reference,
        window=window,
        drift=pairs(drift, "drift"),
        performance=pairs(performance, "performance"),
        drift_share=drift_share,
        min_rows=min_rows,
        target=target or None,
        quality=quality,
        webhooks=webhook,
        allow_hosts=allow_host or (),
        lateness=lateness,
        horizon=horizon,
        tracking_uri=get_state(ctx).tracking_uri,
    )
    if as_json:
        print_json(monitor)
        return
    message(f"Created monitor {name} of {model} against {reference} ({window} windows).")


def list_monitors(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the monitors and the status of their latest window."""
    from loopml import monitoring

    uri = get_state(ctx).tracking_uri
    rows = []
    for monitor in monitoring.list_monitors(tracking_uri=uri):
        results = monitoring.history(monitor.name, limit=1, tracking_uri=uri)
        latest = results[-1].summary if results else None
        rows.append((monitor, latest))
    if as_json:
        print_json([{"monitor": m, "latest": latest} for m, latest in rows])
        return
    table = titled_table("Monitors")
    for column in ("name", "model", "reference", "window", "latest window", "status", "drifted"):
        table.add_column(column)
    for monitor, latest in rows:
        spec = monitor.spec
        status = latest["status"] if latest else None
        table.add_row(
            cell(monitor.name),
            cell(spec.get("model")),
            cell(spec.get("reference")),
            cell(spec.get("window")),
            cell(format_time(latest["window_end"]) if latest else None),
            cell(status, _STYLES.get(status or "", "")),
            cell(", ".join(latest.get("drifted_features") or []) if latest else None),
        )
    print_table(table)


def check_monitor(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.", show_default=False)],
    at: Annotated[
        int | None, typer.Option(help="The window's end, in ms since the epoch [default: now].")
    ] = None,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit 1 when the window breaches a rule.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check the latest window: drift, data quality, performance, alerts (stored)."""
    from loopml import monitoring

    result = monitoring.check(name, at=at, tracking_uri=get_state(ctx).tracking_uri)
    summary = result.to_dict()
    if as_json:
        print_json(summary)
    else:
        for line in _summary_lines(summary):
            message(line)
        if summary.get("drift"):
            print_table(_window_table(summary))
        late = summary.get("late_window")
        if late:
            message(f"Late predictions (arrived after their window was checked): {late['rows']}")
            for line in _summary_lines(late):
                message("  " + line)
    if fail_on_alert and result.alerts:
        raise typer.Exit(EXIT_ERROR)


def monitor_status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Show the latest checked window and the alerts open now."""
    from loopml import monitoring

    uri = get_state(ctx).tracking_uri
    results = monitoring.history(name, tracking_uri=uri)
    monitor = monitoring.get(name, tracking_uri=uri)
    latest = results[-1].summary if results else None
    if as_json:
        print_json({"monitor": monitor, "latest": latest, "windows": len(results)})
        return
    spec = monitor.spec
    message(f"{name}: {spec['model']} against {spec['reference']}, {spec['window']} windows")
    if latest is None:
        message("No window checked yet: loopml monitor check " + name)
        return
    for line in _summary_lines(latest):
        message(line)


def monitor_report(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor.", show_default=False)],
    output: Annotated[Path, typer.Argument(help="The HTML file to write.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Write a self-contained HTML report: distributions, drift over time, quality,
    performance and alerts (opens with no network)."""
    from loopml import monitoring

    content = monitoring.report(name, output, tracking_uri=get_state(ctx).tracking_uri)
    if as_json:
        print_json(content)
        return
    message(f"Wrote {output} ({output.stat().st_size:,} bytes).")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``loopml monitor`` group."""
    for name, func in (
        ("create", create_monitor),
        ("ls", list_monitors),
        ("check", check_monitor),
        ("status", monitor_status),
        ("report", monitor_report),
    ):
        app.command(name, help=reflow(func.__doc__))(func)
