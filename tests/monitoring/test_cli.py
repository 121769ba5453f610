"""``loopml monitor compare``: the table, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from loopml.cli import monitor
from loopml.cli._common import LoopmlGroup


def _app() -> typer.Typer:
    """The monitor group under a root like loopml's (the one that maps errors to exit codes)."""
    root = typer.Typer(cls=LoopmlGroup, pretty_exceptions_enable=False)

    @root.callback()
    def _root() -> None:
        pass

    root.add_typer(monitor.app, name="monitor")
    return root


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    rows = 4000
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows),
            "output.score": rng.random(rows),
        }
    )
    same = reference.sample(frac=1.0, random_state=1)
    moved = reference.copy()
    moved["age"] = moved["age"] + 5
    moved["extra"] = 1
    reference.to_csv(tmp_path / "ref.csv", index=False)
    same.to_parquet(tmp_path / "same.parquet")
    moved.to_csv(tmp_path / "moved.csv", index=False)
    return tmp_path / "ref.csv", tmp_path / "same.parquet", tmp_path / "moved.csv"


def _run(*args: str | Path):
    runner = CliRunner(env={"COLUMNS": None})
    return runner.invoke(_app(), ["monitor", *map(str, args)])


def test_table_output(files) -> None:
    reference, _, moved = files
    result = _run("compare", reference, moved)
    assert result.exit_code == 0, result.output
    assert "1 of 3 columns drifted (age)" in result.stdout
    assert "Wasserstein" in result.stdout
    assert "Cohen's h" in result.stdout
    assert "numeric (output)" in result.stdout
    assert "Not in the reference, not compared: extra" in result.stderr


def test_json_and_fail_on_drift(files) -> None:
    reference, same, moved = files
    result = _run("compare", reference, moved, "--json", "-c", "age", "-c", "plan")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["flagged"] == ["age"]
    assert data["status"] == "drift"
    assert [c["column"] for c in data["columns"]] == ["age", "plan"]
    assert _run("compare", reference, moved, "--fail-on-drift").exit_code == 1
    calm = _run("compare", reference, same, "--fail-on-drift", "--exact", "--json")
    assert calm.exit_code == 0
    assert json.loads(calm.stdout)["columns"][0]["measures"]["ks_exact"] == 0.0


def test_bad_input_exits_2(files, tmp_path: Path) -> None:
    reference, _, moved = files
    missing = _run("compare", reference, tmp_path / "nope.csv")
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    assert _run("compare", reference, moved, "-c", "nope").exit_code == 2
    assert _run("compare", reference, moved, "--threshold", "-1").exit_code == 2
    assert _run("compare", reference, moved, "--min-rows", "0").exit_code == 2


def test_help() -> None:
    result = _run("compare", "--help")
    assert result.exit_code == 0
    assert "--fail-on-drift" in result.stdout
