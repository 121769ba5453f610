"""Window sketches: folding batches, merging, state, and agreement with data profiles."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopml.data.profile import describe, profile_table, sketch
from loopml.errors import InvalidArgumentError
from loopml.monitoring import CategoricalWindow, NumericWindow, WindowSketch
from loopml.testing.drift_data import drift_tables


@pytest.fixture(scope="module")
def tables() -> tuple[pa.Table, pa.Table]:
    return drift_tables(20_000, scenario="shift", seed=1)


@pytest.fixture(scope="module")
def reference(tables: tuple[pa.Table, pa.Table]):
    return profile_table(tables[0])


def _same_profile(a, b) -> None:
    """Equal profiles, but for float sums (summed in another order)."""
    assert a.num_rows == b.num_rows
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        x, y = a.columns[name], b.columns[name]
        if x.kind == "numeric":
            assert (x.count, x.missing, x.min, x.max, x.edges, x.counts) == (
                y.count,
                y.missing,
                y.min,
                y.max,
                y.edges,
                y.counts,
            ), name
            assert x.sum == pytest.approx(y.sum, rel=1e-9, abs=1e-6)
            assert x.sum_sq == pytest.approx(y.sum_sq, rel=1e-9)
        else:
            assert x == y, name


def test_sketch_matches_data_profile_sketch(tables, reference) -> None:
    window = WindowSketch(reference)
    window.update(tables[1])
    _same_profile(window.to_profile(), sketch(tables[1], like=reference))


def test_batches_as_arrow_pandas_and_numpy_agree(tables, reference) -> None:
    table = tables[1].slice(0, 5000)
    from_arrow, from_pandas, from_numpy = (WindowSketch(reference) for _ in range(3))
    from_arrow.update(table)
    from_arrow_batch = WindowSketch(reference)
    from_arrow_batch.update(table.to_batches()[0])
    from_pandas.update(table.to_pandas())
    from_numpy.update(
        {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
    )
    want = from_arrow.to_dict()
    for other in (from_arrow_batch, from_pandas, from_numpy):
        got = other.to_dict()
        assert got["ints"] == want["ints"]
        assert got["min"] == want["min"]
        assert got["max"] == want["max"]
        assert np.allclose(got["sums"], want["sums"], rtol=1e-9)


def test_merge_equals_sketch_of_concatenation(tables, reference) -> None:
    current = tables[1]
    parts = [current.slice(i, 1000) for i in range(0, current.num_rows, 1000)]
    windows = []
    for part in parts:
        window = WindowSketch(reference)
        window.update(part)
        windows.append(window)
    whole = WindowSketch(reference)
    whole.update(current)
    merged = WindowSketch.merge_all(windows)
    pairwise = windows[0]
    for window in windows[1:]:
        pairwise = pairwise.merge(window)
    for got in (merged, pairwise):
        assert got.num_rows == whole.num_rows
        assert got.to_dict()["ints"] == whole.to_dict()["ints"]
        _same_profile(got.to_profile(), whole.to_profile())
    # merging changes neither input
    assert windows[0].num_rows == 1000


def test_state_round_trip_and_size(tables, reference) -> None:
    window = WindowSketch(reference)
    window.update(tables[1])
    state = window.to_dict()
    text = json.dumps(state, allow_nan=False)
    assert len(text.encode()) < 16 * 1024  # 20 columns
    back = WindowSketch.from_dict(json.loads(text), reference)
    assert back.to_dict() == state
    assert back.fingerprint == window.fingerprint


def test_state_from_another_reference_is_refused(tables, reference) -> None:
    window = WindowSketch(reference)
    window.update(tables[1].slice(0, 100))
    other = profile_table(tables[1])
    with pytest.raises(InvalidArgumentError) as info:
        WindowSketch.from_dict(window.to_dict(), other)
    assert info.value.details["field"] == "reference"
    with pytest.raises(InvalidArgumentError):
        window.merge(WindowSketch(other))
    with pytest.raises(InvalidArgumentError) as info:
        WindowSketch.from_dict({"version": 1, "columns": ["num_00"]}, reference)
    assert info.value.details["field"] == "d"
    bad = window.to_dict()
    bad["ints"] = bad["ints"][:-1]
    with pytest.raises(InvalidArgumentError):
        WindowSketch.from_dict(bad, reference)
    with pytest.raises(InvalidArgumentError) as info:
        WindowSketch.from_dict({**window.to_dict(), "version": 99}, reference)
    assert info.value.details["field"] == "version"


def test_concurrent_updates_lose_nothing(tables, reference) -> None:
    window = WindowSketch(reference)
    batch = {
        name: tables[1][name].to_numpy(zero_copy_only=False)[:200]
        for name in tables[1].column_names
    }

    def work() -> None:
        for _ in range(25):
            window.update(batch)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(20):  # reading while others write
        json.dumps(window.to_dict(), allow_nan=False)
    for thread in threads:
        thread.join()
    assert window.num_rows == 8 * 25 * 200
    column = window.column("num_00")
    assert isinstance(column, NumericWindow)
    assert column.count == 8 * 25 * 200
    assert sum(column.counts) == column.count


def test_empty_and_copy(reference) -> None:
    window = WindowSketch(reference, columns=["num_00", "cat_0"])
    assert window.columns == ("num_00", "cat_0")
    window.update({"num_00": np.arange(10.0), "cat_0": np.array(["a"] * 10)})
    copy, fresh = window.copy(), window.empty()
    window.update({"num_00": np.arange(10.0), "cat_0": np.array(["a"] * 10)})
    assert copy.num_rows == 10
    assert fresh.num_rows == 0
    assert window.num_rows == 20
    assert fresh.fingerprint == window.fingerprint
    assert json.loads(json.dumps(fresh.to_dict()))["min"] == [None]


def test_missing_wrong_types_and_unseen_values(reference) -> None:
    window = WindowSketch(reference, columns=["num_00", "num_06", "cat_0"])
    window.update(
        {
            "num_00": np.array([1.0, np.nan, None, "x", 2.5, True], dtype=object),
            "num_06": np.array(["1", "2", "3", "4", "5", "6"]),
            "cat_0": np.array(["a", None, 3, "new", "new", float("nan")], dtype=object),
        }
    )
    num = window.column("num_00")
    assert isinstance(num, NumericWindow)
    assert (num.count, num.missing, num.mismatched) == (2, 2, 2)
    assert (num.min, num.max, num.sum) == (1.0, 2.5, 3.5)
    text = window.column("num_06")
    assert (text.count, text.mismatched) == (0, 6)
    cat = window.column("cat_0")
    assert isinstance(cat, CategoricalWindow)
    assert (cat.count, cat.missing, cat.mismatched, cat.other) == (3, 2, 1, 2)
    assert cat.counts["a"] == 1
    assert cat.unseen == {"new": 2}


def test_absent_columns_count_as_missing(reference) -> None:
    window = WindowSketch(reference, columns=["num_00", "cat_0"])
    window.update({"num_00": np.ones(5), "unknown": np.ones(5)})
    cat = window.column("cat_0")
    assert (cat.present, cat.missing, cat.count) == (0, 5, 0)


def test_datetime_and_boolean_columns_follow_profile_conventions() -> None:
    stamps = pd.date_range("2024-01-01", periods=1000, freq="h", tz="UTC")
    frame = pd.DataFrame({"when": stamps, "day": stamps.date, "flag": np.arange(1000) % 3 == 0})
    reference = describe(frame)[1]
    current = frame.iloc[::2]
    window = WindowSketch(reference)
    window.update(current)
    _same_profile(window.to_profile(), sketch(current, like=reference))
    numpy_window = WindowSketch(reference, columns=["when", "flag"])
    numpy_window.update(
        {
            "when": current["when"].dt.tz_convert(None).to_numpy(),
            "flag": current["flag"].to_numpy(),
        }
    )
    assert numpy_window.column("when") == window.column("when")
    assert numpy_window.column("flag") == window.column("flag")


def test_update_rejects_bad_batches(reference) -> None:
    window = WindowSketch(reference)
    with pytest.raises(InvalidArgumentError) as info:
        window.update([1, 2, 3])
    assert info.value.details["field"] == "batch"
    with pytest.raises(InvalidArgumentError) as info:
        window.update({"num_00": np.ones(3), "num_01": np.ones(4)})
    assert info.value.details["field"] == "batch"
    with pytest.raises(InvalidArgumentError) as info:
        WindowSketch(reference, columns=["nope"])
    assert info.value.details["field"] == "columns"
    with pytest.raises(InvalidArgumentError) as info:
        WindowSketch({"num_00": 1})  # type: ignore[arg-type]
    assert info.value.details["field"] == "reference"
    with pytest.raises(InvalidArgumentError) as info:
        window.column("nope")
    assert info.value.details["field"] == "name"
    with pytest.raises(InvalidArgumentError) as info:
        WindowSketch.merge_all([])
    assert info.value.details["field"] == "sketches"
    assert window.num_rows == 0
