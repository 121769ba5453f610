"""Fixtures for the CLI tests: a fresh store per test, a runner, and a small seeded experiment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from loopml.cli import app
from loopml.storage.uris import clear_store_cache
from loopml.tracking.client import Client

T0 = 1_700_000_000_000

Invoke = Callable[..., Result]


@pytest.fixture
def store_uri(tmp_path: Path) -> Iterator[str]:
    """A tracking URI no other test uses; open stores are closed afterwards."""
    yield str(tmp_path / "store")
    clear_store_cache()


@pytest.fixture
def runner() -> CliRunner:
    # No COLUMNS and no inherited tracking URI: tables keep their natural width and every
    # test names its own store.
    return CliRunner(env={"COLUMNS": None, "LOOPML_TRACKING_URI": None})


@pytest.fixture
def cli(runner: CliRunner, store_uri: str) -> Invoke:
    """``cli("runs", "ls", "demo")`` runs ``loopml -t STORE runs ls demo``."""

    def invoke(*args: str, **kwargs: Any) -> Result:
        return runner.invoke(app, ["--tracking-uri", store_uri, *args], **kwargs)

    return invoke


@pytest.fixture
def cli_json(cli: Invoke) -> Callable[..., Any]:
    """Run a command that must succeed and parse its stdout as JSON."""

    def invoke(*args: str) -> Any:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return invoke


@dataclass(frozen=True)
class Seeded:
    experiment_id: str
    alpha: str
    beta: str
    gamma: str


@pytest.fixture
def seeded(store_uri: str, tmp_path: Path) -> Seeded:
    """Experiment "demo" with runs alpha, beta and gamma (a child of alpha), oldest first."""
    client = Client(store_uri)
    exp_id = client.create_experiment("demo", "seeded for the CLI tests")

    def make(name: str, params: dict[str, Any], start: int, parent: str | None = None) -> str:
        run_id = client.create_run(exp_id, name, start_time=start, parent_run_id=parent).run_id
        client.log_params(run_id, params)
        return run_id

    alpha = make("alpha", {"lr": 0.1, "model": "rf"}, T0)
    for step, loss in enumerate([1.0, 0.5, 0.25]):
        client.log_metric(alpha, "loss", loss, step=step, synchronous=True)
    client.log_metric(alpha, "acc", 0.9, synchronous=True)
    client.set_tag(alpha, "team", "vision")
    client.log_text(alpha, "hello", "notes.txt")
    client.log_dict(alpha, {"score": 0.9}, "eval/report.json")
    client.set_terminated(alpha, end_time=T0 + 65_000)

    beta = make("beta", {"lr": 0.01, "model": "rf"}, T0 + 1000)
    client.log_metrics(beta, {"acc": 0.8, "loss": float("nan")}, synchronous=True)
    client.set_terminated(beta, "FAILED", end_time=T0 + 3000)

    gamma = make("gamma", {"lr": 0.1, "model": "linear"}, T0 + 2000, parent=alpha)
    client.log_metric(gamma, "acc", 0.95, synchronous=True)
    client.set_terminated(gamma, end_time=T0 + 2500)
    return Seeded(exp_id, alpha, beta, gamma)
