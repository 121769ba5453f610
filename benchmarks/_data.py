"""The data every tracking workload logs, identical for loopml and MLflow.

Standard library only: both workers import it, each in its own environment.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

BASE_TIMESTAMP = 1_700_000_000_000  # ms; fixed so both tools store the same points
MODELS = ("rf", "xgb", "lr", "svm")
SEARCH_FILTER = "params.model = 'rf' and metrics.loss < 0.5"
SEARCH_ORDER = "metrics.loss ASC"
SEARCH_MAX_RESULTS = 100


def curve(i: int) -> float:
    """A decreasing loss curve with some wiggle (no randomness: cheap and reproducible)."""
    return 1.0 / (1.0 + 0.001 * i) + 0.01 * ((i * 7919) % 13) / 13


@dataclass(frozen=True)
class RunData:
    """The params and latest metrics of one synthetic run."""

    index: int
    params: dict[str, str]
    metrics: dict[str, float]


def run_params(index: int, count: int) -> dict[str, str]:
    """``count`` params; the first is ``model``, the search filter's param."""
    params = {"model": MODELS[index % len(MODELS)]}
    for j in range(1, count):
        params[f"p{j}"] = str((index * 31 + j) % 97)
    return params


def run_metrics(index: int, count: int, rng: random.Random) -> dict[str, float]:
    """``count`` metrics; the first is ``loss`` in [0, 1), the search filter's metric."""
    metrics = {"loss": rng.random()}
    for j in range(1, count):
        metrics[f"m{j}"] = rng.random()
    return metrics


def search_runs_data(count: int, n_params: int = 5, n_metrics: int = 3) -> Iterator[RunData]:
    """The runs the search workload stores: same seed, same data for both tools."""
    rng = random.Random(20240501)
    for index in range(count):
        yield RunData(index, run_params(index, n_params), run_metrics(index, n_metrics, rng))
