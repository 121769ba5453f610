"""Data-quality findings: missing rate, out of range, unseen categories, wrong types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.data.profile import profile_table
from loopml.monitoring import QualityRule, WindowSketch, compare
from loopml.monitoring.quality import column_quality
from loopml.testing.drift_data import drift_tables


@pytest.mark.parametrize("rows", [10_000, 100_000])
def test_no_findings_without_a_change(rows: int) -> None:
    assert compare(*drift_tables(rows, scenario="none", seed=0)).quality == ()


def _reference(rows: int = 10_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )


def _findings(current: pd.DataFrame, **rule: float) -> dict[tuple[str, str], object]:
    result = compare(_reference(), current, quality=QualityRule(**rule))
    return {(f.column, f.kind): f for f in result.quality}


def test_missing_rate_change() -> None:
    current = _reference()
    current.loc[:299, "x"] = np.nan  # 3 points
    finding = _findings(current)[("x", "missing_rate")]
    assert (finding.reference, finding.current, finding.count) == (0.0, 0.03, 300)
    assert finding.message == "missing values 0% -> 3% (+3 points)"
    assert ("x", "missing_rate") not in _findings(current, missing_rate_change=0.05)
    current.loc[:49, "x"] = np.nan
    slight = _reference()
    slight.loc[:49, "x"] = np.nan  # half a point: below the threshold
    assert _findings(slight) == {}


def test_out_of_range_needs_more_than_chance() -> None:
    current = _reference()
    current.loc[:1, "x"] = [50.0, -50.0]  # two values: what chance alone gives
    assert ("x", "out_of_range") not in _findings(current)
    current.loc[:49, "x"] = 1e3  # 0.5%
    finding = _findings(current)[("x", "out_of_range")]
    assert finding.count >= 50
    assert finding.pvalue < 1e-10
    assert "above" in finding.examples[-1]


def test_unseen_categories() -> None:
    current = _reference()
    current.loc[:99, "plan"] = "enterprise"
    current.loc[100:101, "plan"] = "free"
    finding = _findings(current)[("plan", "unseen_categories")]
    assert finding.count == 102
    assert finding.examples == ("'enterprise' (100)", "'free' (2)")
    few = _reference()
    few.loc[:1, "plan"] = "enterprise"  # two new values in 10,000: chance
    assert ("plan", "unseen_categories") not in _findings(few)


def test_unseen_is_not_claimed_when_the_reference_kept_only_its_top_values() -> None:
    rows = 20_000
    reference = pd.DataFrame({"id": [f"u{i % 500}" for i in range(rows)]})  # 500 > 100 kept
    current = pd.DataFrame({"id": [f"new{i}" for i in range(rows)]})
    kinds = {f.kind for f in compare(reference, current).quality}
    assert "unseen_categories" not in kinds


def test_type_mismatch_in_a_window() -> None:
    profile = profile_table(_reference())
    window = WindowSketch(profile)
    window.update(
        {"x": np.array([1.0, "oops", 2.0] * 100, dtype=object), "plan": np.array([1, 2, 3] * 100)}
    )
    found = {(f.column, f.kind): f for f in compare(profile, window).quality}
    assert found[("x", "type_mismatch")].message == "100 values (33.3%) are not numbers"
    assert found[("plan", "type_mismatch")].message == "300 values (100%) are not text"
    result = compare(profile, window)
    assert result.column("plan").status == "wrong_type"
    assert result.column("x").status == "drift"  # tested on its numbers (1 and 2)


def test_column_quality_directly() -> None:
    profile = profile_table(_reference())
    window = WindowSketch(profile, columns=["x"])
    window.update({"x": np.full(1000, np.nan)})
    findings = column_quality("x", profile.columns["x"], window.column("x"))
    assert [f.kind for f in findings] == ["missing_rate"]
    assert findings[0].to_dict()["current"] == 1.0
