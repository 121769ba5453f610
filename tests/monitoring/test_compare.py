"""compare(): the default rule's false alarms and detections, bad columns, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from loopml.data.profile import describe, profile_table
from loopml.errors import InvalidArgumentError
from loopml.monitoring import DriftResult, DriftRule, QualityRule, WindowSketch, compare
from loopml.monitoring.compare import EDGE_SAMPLE, _reference_column
from loopml.testing.drift_data import SHIFTED, drift_tables

SIZES = [10_000, 100_000]


# -- the issue's matrix: nothing flagged without a real shift, every real shift caught -----------


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_false_alarm_on_unshifted_data(rows: int, seed: int) -> None:
    result = compare(*drift_tables(rows, scenario="none", seed=seed))
    assert result.flagged == ()
    assert result.status == "ok"
    assert result.tested == 20


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_false_alarm_on_a_tiny_shift(rows: int, seed: int) -> None:
    """0.02 standard deviations and 0.5 points of a share: significant at 100k rows, but
    practically irrelevant, so not flagged."""
    result = compare(*drift_tables(rows, scenario="tiny", seed=seed))
    assert result.flagged == ()
    if rows >= 100_000:  # the p-value alone would have flagged it
        assert result.column("num_00").pvalue < result.column("num_00").level


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_real_shift_is_caught(rows: int, seed: int) -> None:
    """0.1 standard deviations, a 20% wider spread, -0.1 SD on a skewed column, and a
    5-point change of a category's share."""
    result = compare(*drift_tables(rows, scenario="shift", seed=seed))
    assert result.flagged == SHIFTED
    assert result.status == "drift"
    assert result.has_drift


def test_one_million_rows() -> None:
    """At 1M rows a test alone flags even the tiny shift; the effect size keeps it out."""
    tiny = compare(*drift_tables(1_000_000, scenario="tiny", seed=3))
    assert tiny.flagged == ()
    assert all(tiny.column(n).pvalue < 1e-6 for n in SHIFTED)
    shifted = compare(*drift_tables(1_000_000, scenario="shift", seed=3))
    assert shifted.flagged == SHIFTED


def test_the_issue_rule_without_effect_size_would_alarm() -> None:
    """With the effect threshold at 0 the rule is a Bonferroni-corrected test alone."""
    tables = drift_tables(100_000, scenario="tiny", seed=0)
    assert compare(*tables, rule=DriftRule(threshold=0.0)).flagged != ()


# -- bad columns (RELIABILITY M3) ----------------------------------------------------------------


def _frame(rows: int, seed: int = 0, **changes: object) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "y": rng.normal(5, 2, rows),
            "plan": rng.choice(["basic", "pro", "team"], rows, p=[0.5, 0.3, 0.2]),
        }
    )
    for name, values in changes.items():
        frame[name] = values
    return frame


def test_nans_constant_new_categories_and_wrong_types_never_abort() -> None:
    reference = _frame(5000, 0, const=np.full(5000, 3.0), gone=np.nan, ids=1.0)
    current = _frame(5000, 1, const=np.full(5000, 3.0), gone=np.nan)
    current.loc[:999, "x"] = np.nan  # NaNs: 20% missing now
    current["plan"] = np.where(np.arange(5000) % 10 == 0, "enterprise", current["plan"])
    current["y"] = current["y"].astype(str)  # wrong type
    result = compare(reference, current)
    status = {c.column: (c.status, c.reason) for c in result.columns}
    assert status["x"][0] == "ok"  # tested on the values it has
    assert status["plan"][0] == "drift"
    assert status["y"] == ("wrong_type", "the current values are not numbers (5,000 of 5,000 rows)")
    assert status["const"][0] == "constant"
    assert "single value (3)" in status["const"][1]
    assert status["gone"] == ("all_missing", "the reference has no values in this column")
    assert status["ids"] == ("all_missing", "the column is absent from the current data")
    kinds = {(f.column, f.kind) for f in result.quality}
    assert ("x", "missing_rate") in kinds
    assert ("plan", "unseen_categories") in kinds
    assert ("y", "type_mismatch") in kinds
    assert ("ids", "missing_rate") in kinds
    assert result.tested == 2  # x and plan: the Bonferroni divisor
    json.dumps(result.to_dict(), allow_nan=False)


def test_empty_window_is_insufficient_data_not_no_drift() -> None:
    reference = profile_table(_frame(1000))
    empty = WindowSketch(reference)
    result = compare(reference, empty)
    assert result.status == "insufficient_data"
    assert not result.has_drift
    assert {c.status for c in result.columns} == {"insufficient_data"}
    assert result.columns[0].reason == "the current window has 0 rows; at least 100 are needed"
    assert result.quality == ()
    small = compare(_frame(1000), _frame(50, 1))
    assert small.status == "insufficient_data"
    sparse = _frame(1000, 1)
    sparse.loc[:950, "x"] = np.nan
    one = compare(_frame(1000), sparse)
    assert one.column("x").status == "insufficient_data"
    assert one.column("x").reason == (
        "the current window has 49 non-missing values; at least 100 are needed"
    )
    assert one.column("y").status == "ok"
    assert compare(_frame(50), _frame(1000)).column("x").status == "insufficient_data"


def test_all_missing_window_and_unsupported_columns() -> None:
    reference = _frame(1000, emb=None)
    reference["emb"] = [[1.0, 2.0]] * 1000
    current = _frame(1000, 1)
    current["x"] = np.nan
    current["emb"] = [[1.0, 2.0]] * 1000
    result = compare(reference, current)
    assert result.column("x").status == "all_missing"
    assert result.column("x").reason == "all 1,000 current values are missing"
    assert result.column("emb").status == "wrong_type"
    assert result.column("y").status == "ok"


def test_null_typed_and_tiny_references() -> None:
    reference = pa.table({"x": pa.array([None] * 500, pa.null()), "y": np.arange(500.0)})
    current = pa.table({"x": pa.array([1.0] * 500), "y": np.arange(500.0)})
    result = compare(reference, current)
    assert result.column("x").status == "all_missing"
    assert result.column("y").status == "ok"
    tiny = compare(pa.table({"y": np.arange(20.0)}), current)
    assert tiny.column("y").reason == "the reference has 20 rows; at least 100 are needed"


def test_constant_reference_reports_new_values_as_quality() -> None:
    reference = pd.DataFrame({"c": np.zeros(1000), "k": ["a"] * 1000})
    current = pd.DataFrame(
        {"c": np.r_[np.zeros(900), np.ones(100)], "k": ["a"] * 900 + ["b"] * 100}
    )
    result = compare(reference, current)
    assert [c.status for c in result.columns] == ["constant", "constant"]
    assert {f.kind for f in result.quality} == {"out_of_range", "unseen_categories"}


# -- the same answer whatever the path -----------------------------------------------------------


def test_deterministic() -> None:
    tables = drift_tables(20_000, scenario="shift", seed=5)
    first = compare(*tables).to_dict()
    assert compare(*tables).to_dict() == first
    assert compare(*tables, threads=1).to_dict() == first


def test_table_profile_and_sketch_paths_agree() -> None:
    reference, current = drift_tables(50_000, scenario="shift", seed=2)
    profile = profile_table(reference)
    window = WindowSketch(profile)
    for batch in current.to_batches(max_chunksize=7_000):
        window.update(batch)
    results = [compare(reference, current), compare(profile, current), compare(profile, window)]
    verdicts = [[(c.column, c.status, c.effect, c.pvalue) for c in r.columns] for r in results]
    for other in verdicts[1:]:
        for a, b in zip(verdicts[0], other, strict=True):
            assert a[:2] == b[:2]
            assert a[2] == pytest.approx(b[2], rel=1e-9)
            assert a[3] == pytest.approx(b[3], rel=1e-9, abs=1e-300)


def test_reference_profile_is_the_data_profile() -> None:
    table = drift_tables(30_000, seed=4)[0]
    table = table.append_column("when", pa.array(np.arange(30_000) * 60_000, pa.timestamp("ms")))
    table = table.append_column("flag", pa.array(np.arange(30_000) % 7 == 0))
    profile = describe(table)[1]
    for name in table.column_names:
        ours = _reference_column(table.column(name), 20)[0]
        theirs = profile.columns[name]
        if ours.kind == "numeric":
            assert (ours.edges, ours.counts, ours.min, ours.max) == (
                theirs.edges,
                theirs.counts,
                theirs.min,
                theirs.max,
            ), name
            assert ours.sum == pytest.approx(theirs.sum, rel=1e-9, abs=1e-6)
        else:
            assert ours == theirs, name


def test_large_reference_edges_come_from_a_fixed_sample() -> None:
    """Above EDGE_SAMPLE values the inner edges are sample quantiles: close to the exact ones,
    the same every time, with the minimum first and exact counts; integer columns of few
    values still get one edge per value."""
    rng = np.random.default_rng(8)
    values = rng.lognormal(0, 1, EDGE_SAMPLE * 3)
    table = pa.table({"x": values, "k": rng.integers(0, 12, values.size)})
    ours = _reference_column(table.column("x"), 20)[0]
    again = _reference_column(table.column("x"), 20)[0]
    assert ours == again
    assert ours.edges[0] == values.min()
    exact = describe(table)[1]
    assert np.allclose(ours.edges, exact.columns["x"].edges, rtol=0.02)
    counts = np.diff([0, *[np.count_nonzero(values < e) for e in ours.edges], values.size])
    assert list(ours.counts) == counts.tolist()
    assert _reference_column(table.column("k"), 20)[0] == exact.columns["k"]


def test_exact_ks_with_two_tables() -> None:
    reference, current = drift_tables(20_000, scenario="shift", seed=0)
    result = compare(reference, current, exact=True)
    for name in ("num_00", "num_05"):
        measures = result.column(name).measures
        want = stats.ks_2samp(reference[name].to_numpy(), current[name].to_numpy())
        assert measures["ks_exact"] == pytest.approx(want.statistic, abs=1e-12)
        assert measures["ks_exact_pvalue"] == pytest.approx(want.pvalue, rel=0.1, abs=1e-12)
    assert "ks_exact" not in compare(reference, current).column("num_00").measures


def test_files_and_prediction_columns(tmp_path) -> None:
    reference = _frame(3000)
    current = _frame(3000, 1)
    reference["output.score"] = np.linspace(0, 1, 3000)
    current["output.score"] = np.linspace(0, 1, 3000) ** 2
    current["extra"] = 1
    reference.to_csv(tmp_path / "ref.csv", index=False)
    pq.write_table(pa.Table.from_pandas(current), tmp_path / "cur.parquet")
    result = compare(tmp_path / "ref.csv", str(tmp_path / "cur.parquet"))
    assert [c.column for c in result.predictions] == ["output.score"]
    assert result.prediction_drift
    assert result.flagged == ("output.score",)
    assert result.ignored == ("extra",)
    chosen = compare(reference, current, columns=["x", "plan"], predictions=["plan"])
    assert [(c.column, c.role) for c in chosen.columns] == [
        ("x", "feature"),
        ("plan", "prediction"),
    ]


def test_result_round_trip() -> None:
    result = compare(*drift_tables(5_000, scenario="shift", seed=0))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    back = DriftResult.from_dict(data)
    assert back == result
    assert back.status == result.status == "drift"
    with pytest.raises(InvalidArgumentError) as info:
        DriftResult.from_dict({"version": 1})
    assert info.value.details["field"] == "d"


def test_rule_settings() -> None:
    tables = drift_tables(10_000, scenario="shift", seed=0)
    strict = compare(*tables, rule=DriftRule(threshold=0.5))
    assert strict.flagged == ()
    assert "< 0.5" in strict.column("num_00").reason
    psi_rule = DriftRule(numeric_effect="psi", numeric_threshold=0.005, numeric_test="chi_square")
    chosen = compare(*tables, rule=psi_rule).column("num_00")
    assert (chosen.effect_measure, chosen.test) == ("psi", "chi_square")
    assert chosen.effect == chosen.measures["psi"]
    none = compare(*tables, rule=DriftRule(correction="none")).column("num_00")
    assert none.level == 0.05
    for bad in (
        {"threshold": -1},
        {"alpha": 0},
        {"alpha": 1.5},
        {"correction": "holm"},
        {"numeric_effect": "cohen_h"},
        {"categorical_effect": "wasserstein"},
        {"numeric_test": "t"},
        {"min_rows": 0},
        {"min_rows": 2.5},
    ):
        with pytest.raises(InvalidArgumentError) as info:
            DriftRule(**bad)  # type: ignore[arg-type]
        assert info.value.details["field"] == next(iter(bad))
    with pytest.raises(InvalidArgumentError) as info:
        QualityRule(out_of_range=2)
    assert info.value.details["field"] == "out_of_range"


def test_bad_arguments_name_the_field(tmp_path) -> None:
    frame = _frame(200)
    cases = [
        ({"reference": 3, "current": frame}, "reference"),
        ({"reference": frame, "current": [1]}, "current"),
        ({"reference": tmp_path / "missing.csv", "current": frame}, "reference"),
        ({"reference": frame, "current": tmp_path / "data.json"}, "current"),
        ({"reference": frame, "current": frame, "columns": ["nope"]}, "columns"),
        ({"reference": frame, "current": frame, "columns": "x"}, "columns"),
        ({"reference": frame, "current": frame, "columns": []}, "columns"),
        ({"reference": frame, "current": frame, "predictions": ["nope"]}, "predictions"),
        ({"reference": frame, "current": frame, "bins": 1}, "bins"),
        ({"reference": frame, "current": frame, "rule": {"threshold": 1}}, "rule"),
        ({"reference": frame, "current": frame, "threads": 0}, "threads"),
        ({"reference": frame, "current": WindowSketch(profile_table(frame))}, "reference"),
        (
            {
                "reference": profile_table(_frame(300, 1)),
                "current": WindowSketch(profile_table(frame)),
            },
            "current",
        ),
    ]
    (tmp_path / "bad.csv").write_text("a,b\n1,2,3\n")
    cases.append(({"reference": tmp_path / "bad.csv", "current": frame}, "reference"))
    for kwargs, field in cases:
        with pytest.raises(InvalidArgumentError) as info:
            compare(**kwargs)  # type: ignore[arg-type]
        assert info.value.details["field"] == field, kwargs
