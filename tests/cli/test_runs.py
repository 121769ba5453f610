"""``loopml runs``: ls (filter, order, paging), show, compare and history."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from loopml.cli import app


def _names(listing: dict) -> list[str]:
    return [run["info"]["run_name"] for run in listing["runs"]]


def test_ls_table(cli, seeded) -> None:
    result = cli("runs", "ls", "demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for run_id in (seeded.alpha, seeded.beta, seeded.gamma):
        assert run_id in out  # full ids, so they can be pasted into other commands
    for text in ("alpha", "beta", "gamma", "FINISHED", "FAILED", "1m 05s", "acc", "lr", "0.95"):
        assert text in out
    assert "parent" in out  # gamma is nested under alpha
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_ls_json(cli_json, seeded) -> None:
    listing = cli_json("runs", "ls", "demo", "--json")
    assert listing["next_page_token"] is None
    assert _names(listing) == ["gamma", "beta", "alpha"]  # newest first
    by_name = {run["info"]["run_name"]: run for run in listing["runs"]}
    alpha = by_name["alpha"]
    assert alpha["info"]["run_id"] == seeded.alpha
    assert alpha["info"]["status"] == "FINISHED"
    assert alpha["data"]["params"] == {"lr": "0.1", "model": "rf"}
    assert alpha["data"]["metrics"] == {"acc": 0.9, "loss": 0.25}
    assert alpha["data"]["latest_metrics"]["loss"]["step"] == 2
    assert alpha["data"]["tags"] == {"team": "vision"}
    assert by_name["gamma"]["info"]["parent_run_id"] == seeded.alpha
    assert by_name["beta"]["data"]["metrics"]["loss"] == "NaN"


def test_ls_by_experiment_id(cli_json, seeded) -> None:
    assert len(cli_json("runs", "ls", seeded.experiment_id, "--json")["runs"]) == 3


def test_ls_filter_and_order_by(cli, cli_json, seeded) -> None:
    best = cli_json(
        "runs",
        "ls",
        "demo",
        "--filter",
        "metrics.acc > 0.85",
        "--order-by",
        "metrics.acc DESC",
        "--json",
    )
    assert _names(best) == ["gamma", "alpha"]

    rf = cli_json("runs", "ls", "demo", "-f", "params.model = 'rf'", "-o", "metrics.acc", "--json")
    assert _names(rf) == ["beta", "alpha"]

    two_keys = cli_json("runs", "ls", "demo", "-o", "params.lr", "-o", "start_time DESC", "--json")
    assert _names(two_keys) == ["beta", "gamma", "alpha"]

    table = cli("runs", "ls", "demo", "-f", "status = 'failed'")
    assert table.exit_code == 0
    assert "beta" in table.stdout
    assert "alpha" not in table.stdout


def test_ls_no_match(cli, seeded) -> None:
    result = cli("runs", "ls", "demo", "-f", "metrics.acc > 2")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No runs in experiment 'demo' match the filter." in result.stderr


def test_ls_pages(cli_json, seeded) -> None:
    first = cli_json("runs", "ls", "demo", "--max-results", "2", "--json")
    assert _names(first) == ["gamma", "beta"]
    assert first["next_page_token"]
    rest = cli_json(
        "runs", "ls", "demo", "-n", "2", "--page-token", first["next_page_token"], "--json"
    )
    assert _names(rest) == ["alpha"]
    assert rest["next_page_token"] is None


def test_bad_filter_shows_the_caret_and_no_traceback(cli, seeded) -> None:
    result = cli("runs", "ls", "demo", "--filter", "metrics.acc >> 1")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines[0].startswith("Error: expected a value")
    assert "(at position 13)" in lines[0]
    assert lines[1] == "  metrics.acc >> 1"
    assert lines[2] == "  " + " " * 13 + "^"
    assert "Traceback" not in result.output


def test_bad_order_by_is_a_bad_argument(cli, seeded) -> None:
    result = cli("runs", "ls", "demo", "--order-by", "metrics.acc SIDEWAYS")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: order_by clause 0")
    assert "^" in result.stderr


def test_ls_unknown_experiment(cli, seeded) -> None:
    result = cli("runs", "ls", "nope")
    assert result.exit_code == 3
    assert result.stderr == "Error: No experiment named 'nope'.\n"
    assert cli("runs", "ls", "987").exit_code == 3


def test_ls_narrow_terminal_drops_columns_not_ids(runner: CliRunner, store_uri, seeded) -> None:
    result = runner.invoke(app, ["-t", store_uri, "runs", "ls", "demo"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert seeded.alpha in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "more metric/param columns not shown" in result.stderr


def test_show(cli, seeded) -> None:
    result = cli("runs", "show", seeded.alpha)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in (
        seeded.alpha,
        "alpha",
        "demo",
        "FINISHED",
        "lr",
        "0.1",
        "loss",
        "0.25",
        "team",
        "vision",
        "notes.txt",
        "eval/report.json",
        "1m 05s",
    ):
        assert text in out, text


def test_show_json(cli_json, seeded) -> None:
    shown = cli_json("runs", "show", seeded.alpha, "--json")
    assert set(shown) == {"info", "data", "inputs", "artifacts"}
    assert shown["inputs"] == []
    assert shown["info"]["run_name"] == "alpha"
    assert "python_version" in shown["info"]["source"]
    assert shown["data"]["metrics"]["loss"] == 0.25
    assert [a["path"] for a in shown["artifacts"]] == ["eval/report.json", "notes.txt"]
    assert all(a["digest"].startswith("blake3:") for a in shown["artifacts"])


def test_show_unknown_run_is_one_line(cli, seeded) -> None:
    missing = "f" * 32
    result = cli("runs", "show", missing)
    assert result.exit_code == 3
    assert result.stderr == f"Error: No run with id '{missing}'.\n"
    assert result.stdout == ""


def test_show_malformed_run_id_is_a_bad_argument(cli, seeded) -> None:
    result = cli("runs", "show", "abc")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: The run_id must be 32 lowercase hexadecimal")


def test_compare(cli, seeded) -> None:
    result = cli("runs", "compare", seeded.alpha, seeded.beta, seeded.gamma)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("alpha", "beta", "gamma"):
        assert name in out
    assert "* param lr" in out  # 0.1 / 0.01 / 0.1
    assert "* metric acc" in out
    assert "* = values differ" in out

    same_lr = cli("runs", "compare", seeded.alpha, seeded.gamma).stdout
    assert "param lr" in same_lr
    assert "* param lr" not in same_lr  # 0.1 / 0.1
    assert "* param model" in same_lr  # rf / linear


def test_compare_json(cli_json, seeded) -> None:
    compared = cli_json("runs", "compare", seeded.alpha, seeded.beta, "--json")
    assert [r["run_name"] for r in compared["runs"]] == ["alpha", "beta"]
    params = {row["key"]: row for row in compared["params"]}
    assert params["lr"] == {"key": "lr", "values": ["0.1", "0.01"], "differs": True}
    assert params["model"] == {"key": "model", "values": ["rf", "rf"], "differs": False}
    metrics = {row["key"]: row for row in compared["metrics"]}
    assert metrics["acc"]["values"] == [0.9, 0.8]
    assert metrics["loss"]["values"] == [0.25, "NaN"]
    assert metrics["loss"]["differs"] is True


def test_compare_missing_values(cli_json, seeded) -> None:
    compared = cli_json("runs", "compare", seeded.alpha, seeded.gamma, "--json")
    loss = next(row for row in compared["metrics"] if row["key"] == "loss")
    assert loss == {"key": "loss", "values": [0.25, None], "differs": True}


def test_compare_needs_two_runs(cli, seeded) -> None:
    result = cli("runs", "compare", seeded.alpha)
    assert result.exit_code == 2
    assert "at least two run ids" in result.output


def test_compare_unknown_run(cli, seeded) -> None:
    result = cli("runs", "compare", seeded.alpha, "e" * 32)
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: No run with id")


def test_history(cli, cli_json, seeded) -> None:
    points = cli_json("runs", "history", seeded.alpha, "loss", "--json")
    assert [(p["step"], p["value"]) for p in points] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert set(points[0]) == {"key", "value", "timestamp", "step"}
    table = cli("runs", "history", seeded.alpha, "loss")
    assert table.exit_code == 0
    assert "0.25" in table.stdout


@pytest.mark.parametrize("key", ["nothing-logged"])
def test_history_of_a_missing_metric(cli, seeded, key: str) -> None:
    result = cli("runs", "history", seeded.alpha, key)
    assert result.exit_code == 0
    assert "no points" in result.stderr


def test_user_text_is_never_read_as_markup(cli, store_uri) -> None:
    from loopml.tracking.client import Client

    client = Client(store_uri)
    exp_id = client.create_experiment("[bold]exp[/bold]")
    run_id = client.create_run(exp_id, "[red]odd[/red]").run_id
    client.log_params(run_id, {"[i]k[/i]": "[b]v[/b]"})
    client.set_terminated(run_id)
    listed = cli("runs", "ls", "[bold]exp[/bold]")
    assert listed.exit_code == 0, listed.output
    assert "[red]odd[/red]" in listed.stdout
    assert "[b]v[/b]" in listed.stdout
    shown = cli("runs", "show", run_id)
    assert "Run [red]odd[/red]" in shown.stdout
    assert "[i]k[/i]" in shown.stdout
