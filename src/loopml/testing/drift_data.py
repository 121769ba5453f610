"""Seeded synthetic tables for drift tests and the monitoring benchmark.

:func:`drift_tables` makes a reference and a current table of 15 numeric and 5 categorical
columns of varied shapes (normal, skewed, heavy-tailed, bimodal, bounded, integer counts; two to
thirty categories). In the current table only :data:`SHIFTED` columns change, by scenario:

========  ==========================================================================
scenario  change
========  ==========================================================================
none      nothing (both tables from the same distributions)
tiny      num_00, num_01, num_02 move by 0.02 standard deviations; cat_0's "b" gains
          0.5 points of share
shift     num_00 moves by 0.1 standard deviations; num_01's spread grows by 20%;
          num_02 (log-normal) moves by -0.1 standard deviations; cat_0's "b" gains
          5 points of share
========  ==========================================================================

The same ``rows``, ``scenario`` and ``seed`` always give the same tables.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["SCENARIOS", "SHIFTED", "categorical_columns", "drift_tables", "numeric_columns"]

SCENARIOS = ("none", "tiny", "shift")
SHIFTED = ("num_00", "num_01", "num_02", "cat_0")
_LOGNORMAL_SIGMA = 0.5
_CATEGORIES: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("cat_0", (0.4, 0.3, 0.2, 0.1)),
    ("cat_1", (0.7, 0.3)),
    ("cat_2", tuple(1.0 / (k + 1) for k in range(10))),
    ("cat_3", (0.5, 0.25, 0.25)),
    ("cat_4", tuple(1.0 + (k % 3) for k in range(30))),
)


def numeric_columns() -> list[str]:
    return [f"num_{i:02d}" for i in range(15)]


def categorical_columns() -> list[str]:
    return [name for name, _ in _CATEGORIES]


def _numeric(rng: np.random.Generator, index: int, rows: int) -> Any:
    """Column ``num_<index>`` before any shift."""
    kinds = {
        0: lambda: rng.normal(0.0, 1.0, rows),
        1: lambda: rng.normal(50.0, 10.0, rows),
        2: lambda: rng.lognormal(0.0, _LOGNORMAL_SIGMA, rows),
        3: lambda: rng.exponential(2.0, rows),
        4: lambda: rng.uniform(-1.0, 1.0, rows),
        5: lambda: rng.standard_t(5, rows),
        6: lambda: rng.poisson(3.0, rows).astype(np.int64),
        7: lambda: rng.integers(0, 10, rows),
        8: lambda: np.where(
            rng.random(rows) < 0.3, rng.normal(-2, 0.5, rows), rng.normal(2, 1, rows)
        ),
        9: lambda: rng.beta(2.0, 5.0, rows),
        10: lambda: rng.gamma(2.0, 3.0, rows),
        11: lambda: rng.normal(1e6, 1e4, rows),
        12: lambda: rng.lognormal(3.0, 1.0, rows),
        13: lambda: rng.normal(0.0, 1e-3, rows),
        14: lambda: rng.integers(0, 1000, rows),
    }
    return kinds[index]()


def _lognormal_std() -> float:
    s2 = _LOGNORMAL_SIGMA**2
    return math.sqrt((math.exp(s2) - 1.0) * math.exp(s2))


def _shifted(index: int, values: Any, scenario: str) -> Any:
    if scenario == "none" or index > 2:
        return values
    sd = (1.0, 10.0, _lognormal_std())[index]
    if scenario == "tiny":
        return values + 0.02 * sd
    if index == 0:
        return values + 0.1 * sd
    if index == 1:
        return 50.0 + (values - 50.0) * 1.2
    return values - 0.1 * sd


def _shares(weights: tuple[float, ...], change: float) -> Any:
    """Shares from weights, with category 1 ("b") given ``change`` more share and the others
    scaled down in proportion."""
    p = np.asarray(weights, dtype=np.float64)
    p /= p.sum()
    if change:
        q = p * (1.0 - p[1] - change) / (1.0 - p[1])
        q[1] = p[1] + change
        p = q
    return p


def _table(rows: int, seed: int, stream: int, scenario: str) -> pa.Table:
    rng = np.random.default_rng([seed, stream])
    columns: dict[str, Any] = {}
    for index, name in enumerate(numeric_columns()):
        columns[name] = pa.array(_shifted(index, _numeric(rng, index, rows), scenario))
    change = {"none": 0.0, "tiny": 0.005, "shift": 0.05}[scenario]
    for name, weights in _CATEGORIES:
        shares = _shares(weights, change if name == "cat_0" else 0.0)
        labels = pa.array([chr(ord("a") + k) if k < 26 else f"z{k}" for k in range(len(shares))])
        codes = rng.choice(len(shares), size=rows, p=shares).astype(np.int32)
        columns[name] = pa.DictionaryArray.from_arrays(codes, labels).cast(pa.string())
    return pa.table(columns)


def drift_tables(rows: int, *, scenario: str = "none", seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """A reference and a current table of ``rows`` rows each (see the module docstring)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, not {scenario!r}")
    return _table(rows, seed, 0, "none"), _table(rows, seed, 1, scenario)
