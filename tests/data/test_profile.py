"""Schemas and profiles of tables: inference, JSON, bucket definition, sketch, merge and diff."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from loopml.data.profile import (
    CategoricalProfile,
    ColumnSchema,
    NumericProfile,
    OtherProfile,
    Profile,
    Schema,
    describe,
    infer_schema,
    profile_table,
    sketch,
)
from loopml.errors import InvalidArgumentError

NAN = float("nan")
INF = float("inf")


def _numeric(profile: Profile, name: str) -> NumericProfile:
    column = profile.columns[name]
    assert isinstance(column, NumericProfile)
    return column


def _categorical(profile: Profile, name: str) -> CategoricalProfile:
    column = profile.columns[name]
    assert isinstance(column, CategoricalProfile)
    return column


def _json_round_trip(d: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(d, allow_nan=False))
    return loaded


def _mixed_table(rows: int, seed: int = 0, shift: float = 0.0) -> pa.Table:
    """12 float, 4 int, 3 low-cardinality string and 1 bool column, with some nulls."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(12):
        values = rng.normal(i + shift, 1 + i, rows)
        columns[f"f{i}"] = pa.array(values, mask=rng.random(rows) < 0.02)
    for i in range(4):
        columns[f"i{i}"] = pa.array(rng.integers(0, 10 ** (i + 1), rows))
    for i in range(3):
        choices = [f"value_{j}" for j in range(3 + 10 * i)]
        columns[f"s{i}"] = pa.array(rng.choice(choices, rows), mask=rng.random(rows) < 0.05)
    columns["flag"] = pa.array(rng.random(rows) < 0.3)
    return pa.table(columns)


# -- schema inference --------------------------------------------------------------------------


def test_kinds_and_types_are_inferred_per_arrow_type() -> None:
    table = pa.table(
        {
            "i": pa.array([1, 2, 3], pa.int32()),
            "f": [1.5, 2.5, 3.5],
            "dec": pa.array([decimal.Decimal("1.25")] * 3, pa.decimal128(5, 2)),
            "b": [True, False, True],
            "s": ["a", "b", "a"],
            "ts": pa.array([0, 1, 2], pa.timestamp("ms")),
            "d": pa.array([0, 1, 2], pa.date32()),
            "dict": pa.array(["x", "y", "x"]).dictionary_encode(),
            "lst": [[1], [2, 3], []],
            "bin": pa.array([b"a", b"b", b"c"]),
            "nothing": pa.array([None, None, None]),
        }
    )
    schema = infer_schema(table)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {
        "i": "numeric",
        "f": "numeric",
        "dec": "numeric",
        "b": "boolean",
        "s": "categorical",
        "ts": "datetime",
        "d": "datetime",
        "dict": "categorical",
        "lst": "other",
        "bin": "other",
        "nothing": "other",
    }
    types = {c.name: c.type for c in schema.columns}
    assert types["i"] == "int32"
    assert types["f"] == "double"
    assert types["ts"] == "timestamp[ms]"
    assert types["dict"] == "string"
    assert schema.names == tuple(table.column_names)
    assert schema.num_rows == 3


def test_profile_classes_follow_the_kind() -> None:
    table = pa.table({"n": [1, 2], "t": pa.array([1, 2], pa.timestamp("s")), "s": ["a", "b"]})
    table = table.append_column("l", pa.array([[1], None]))
    profile = profile_table(table)
    assert isinstance(profile.columns["n"], NumericProfile)
    assert isinstance(profile.columns["t"], NumericProfile)
    assert isinstance(profile.columns["s"], CategoricalProfile)
    assert profile.columns["l"] == OtherProfile(count=1, missing=1)


def test_nulls_and_nan_both_count_as_missing() -> None:
    table = pa.table({"x": [1.0, NAN, None, 4.0], "y": [1, 2, 3, 4]})
    schema, profile = describe(table)
    x = schema.column("x")
    assert (x.nullable, x.null_count, x.min, x.max, x.distinct) == (True, 2, 1.0, 4.0, 2)
    assert schema.column("y").nullable is False
    assert schema.column("y").null_count == 0
    px = _numeric(profile, "x")
    assert (px.count, px.missing, px.sum) == (2, 2, 5.0)
    assert px.missing_rate == 0.5
    assert sum(px.counts) == 2


def test_numeric_range_keeps_integers_exact() -> None:
    big = 2**62 + 1
    schema = infer_schema(pa.table({"i": [big, -3, 7], "f": [0.25, -1.5, 8.0]}))
    assert schema.column("i").min == -3
    assert schema.column("i").max == big
    assert isinstance(schema.column("i").max, int)
    assert (schema.column("f").min, schema.column("f").max) == (-1.5, 8.0)


def test_categories_are_counted_and_sorted_by_count_then_value() -> None:
    values = ["b", "a", "c", "a", "b", "d", None, "a"]
    schema, profile = describe(pa.table({"s": values}))
    column = schema.column("s")
    assert column.kind == "categorical"
    assert column.categories == {"a": 3, "b": 2, "c": 1, "d": 1}
    assert list(column.categories) == ["a", "b", "c", "d"]
    assert column.distinct == 4
    assert _categorical(profile, "s") == CategoricalProfile(
        count=7, missing=1, counts={"a": 3, "b": 2, "c": 1, "d": 1}, other=0
    )


def test_booleans_are_categories_true_and_false() -> None:
    schema, profile = describe(pa.table({"b": [True, None, False, True]}))
    assert schema.column("b").categories == {"true": 2, "false": 1}
    assert _categorical(profile, "b").counts == {"true": 2, "false": 1}


def test_many_distinct_strings_are_kind_string_with_top_100_and_other() -> None:
    values = [f"v{i:03d}" for i in range(150)] + ["v149"] * 3
    schema, profile = describe(pa.table({"s": values}))
    column = schema.column("s")
    assert (column.kind, column.categories, column.distinct) == ("string", None, 150)
    prof = _categorical(profile, "s")
    assert len(prof.counts) == 100
    assert next(iter(prof.counts.items())) == ("v149", 4)
    assert "v000" in prof.counts
    assert "v148" not in prof.counts
    assert prof.other == 153 - sum(prof.counts.values()) == 50


def test_string_lengths_count_characters() -> None:
    schema = infer_schema(pa.table({"s": ["héllo", "", None, "ab"]}))
    assert (schema.column("s").min_length, schema.column("s").max_length) == (0, 5)
    assert schema.column("s").null_count == 1


def test_datetimes_have_iso_bounds_and_profile_as_epoch_seconds() -> None:
    start = dt.datetime(2024, 1, 2, 3, 4, 5)
    stamps = [start, start + dt.timedelta(hours=1), None]
    table = pa.table(
        {
            "ts": pa.array(stamps, pa.timestamp("us")),
            "tz": pa.array(stamps, pa.timestamp("s", tz="UTC")),
            "day": pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 5), None]),
        }
    )
    schema, profile = describe(table)
    assert schema.column("ts").min == "2024-01-02T03:04:05.000000"
    assert schema.column("ts").max == "2024-01-02T04:04:05.000000"
    assert schema.column("tz").min == "2024-01-02T03:04:05+00:00"
    assert (schema.column("day").min, schema.column("day").max) == ("2024-01-02", "2024-01-05")
    assert schema.column("ts").null_count == 1
    epoch = start.replace(tzinfo=dt.UTC).timestamp()
    ts = _numeric(profile, "ts")
    assert (ts.min, ts.max, ts.count, ts.missing) == (epoch, epoch + 3600, 2, 1)
    assert _numeric(profile, "day").min == dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp()


def test_dictionary_columns_are_described_as_their_values() -> None:
    plain = pa.array(["x", "y", None, "x"])
    chunks = pa.chunked_array([plain.dictionary_encode(), pa.array(["z"]).dictionary_encode()])
    schema, profile = describe(pa.table({"d": chunks}))
    column = schema.column("d")
    assert (column.type, column.kind, column.null_count) == ("string", "categorical", 1)
    assert column.categories == {"x": 2, "y": 1, "z": 1}
    assert _categorical(profile, "d").counts == {"x": 2, "y": 1, "z": 1}
    numbers = infer_schema(pa.table({"n": pa.array([3, 1, 3]).dictionary_encode()}))
    assert (numbers.column("n").kind, numbers.column("n").max) == ("numeric", 3)


# -- edge cases --------------------------------------------------------------------------------


def test_empty_table_is_described_without_crashing() -> None:
    table = pa.table(
        {
            "f": pa.array([], pa.float64()),
            "s": pa.array([], pa.string()),
            "t": pa.array([], pa.timestamp("s")),
            "l": pa.array([], pa.list_(pa.int64())),
        }
    )
    schema, profile = describe(table)
    assert schema.num_rows == profile.num_rows == 0
    f = schema.column("f")
    assert (f.nullable, f.null_count, f.min, f.max, f.distinct) == (False, 0, None, None, 0)
    assert schema.column("s").categories == {}
    nf = _numeric(profile, "f")
    assert (nf.edges, nf.counts, nf.mean, nf.std, nf.quantile(0.5)) == ((), (0,), None, None, None)
    assert _categorical(profile, "s") == CategoricalProfile(count=0, missing=0)
    assert describe(pa.table({}))[1] == Profile(num_rows=0, columns={})


def test_all_null_column_has_no_range_and_one_bucket() -> None:
    schema, profile = describe(pa.table({"x": pa.array([None, None], pa.float64())}))
    assert (schema.column("x").null_count, schema.column("x").min) == (2, None)
    x = _numeric(profile, "x")
    assert (x.count, x.missing, x.edges, x.counts, x.missing_rate) == (0, 2, (), (0,), 1.0)


def test_constant_column_gets_a_single_edge() -> None:
    x = _numeric(profile_table(pa.table({"x": [7.0] * 5})), "x")
    assert (x.edges, x.counts, x.min, x.max, x.std) == ((7.0,), (0, 5), 7.0, 7.0, 0.0)
    assert x.quantile(0.5) == 7.0


# -- schema JSON and diff ----------------------------------------------------------------------


def test_schema_round_trips_through_strict_json_with_infinities() -> None:
    table = pa.table(
        {
            "x": [1.0, INF, NAN, -INF, None],
            "s": ["a", "b", None, "a", "a"],
            "t": pa.array([1, 2, 3, 4, 5], pa.timestamp("s")),
        }
    )
    schema = infer_schema(table)
    assert (schema.column("x").min, schema.column("x").max) == (-INF, INF)
    encoded = _json_round_trip(schema.to_dict())
    assert encoded["columns"][0]["max"] == "inf"
    assert Schema.from_dict(encoded) == schema


def test_schema_from_dict_rejects_malformed_input() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Schema.from_dict({"num_rows": 1})
    assert info.value.details["field"] == "d"
    bad_kind = infer_schema(pa.table({"x": [1]})).to_dict()
    bad_kind["columns"][0]["kind"] = "imaginary"
    with pytest.raises(InvalidArgumentError, match="kind"):
        Schema.from_dict(bad_kind)


def test_schema_column_lookup_names_the_missing_column() -> None:
    schema = infer_schema(pa.table({"a": [1]}))
    assert isinstance(schema.column("a"), ColumnSchema)
    with pytest.raises(InvalidArgumentError, match="'b'") as info:
        schema.column("b")
    assert info.value.details["field"] == "name"


def test_schema_diff_reports_structural_changes_and_new_categories() -> None:
    old = infer_schema(pa.table({"a": [1, 2], "b": ["x", "y"], "c": [1.0, 2.0], "gone": [1, 1]}))
    new = infer_schema(
        pa.table({"a": [1.5, 2.0], "b": ["x", "z"], "c": [1.0, None], "extra": [True, False]})
    )
    diff = old.diff(new)
    assert diff.added == ("extra",)
    assert diff.removed == ("gone",)
    assert diff.type_changed == (("a", "int64", "double"),)
    assert diff.nullability_changed == (("c", False, True),)
    assert diff.new_categories == {"b": ["z"]}
    assert diff.changed is True
    assert _json_round_trip(diff.to_dict())["type_changed"] == [["a", "int64", "double"]]
    assert len(diff.summary()) == 5
    assert "column 'a' type changed: int64 -> double" in diff.summary()


def test_schema_diff_with_only_new_categories_is_not_structural() -> None:
    old = infer_schema(pa.table({"b": ["x", "y"]}))
    diff = old.diff(infer_schema(pa.table({"b": ["x", "w"]})))
    assert (diff.changed, diff.new_categories) == (False, {"b": ["w"]})
    assert old.diff(old).summary() == []


# -- numeric buckets ---------------------------------------------------------------------------


def test_bucket_definition_on_a_hand_computed_example() -> None:
    # 10 distinct values, 5 bins: edges are the sorted values at floor(k * 9 / 5), k = 0..4,
    # i.e. positions 0, 1, 3, 5, 7.
    reference = profile_table(pa.table({"x": [float(v) for v in range(10, 0, -1)]}), bins=5)
    x = _numeric(reference, "x")
    assert x.edges == (1.0, 2.0, 4.0, 6.0, 8.0)
    # (-inf, 1), [1, 2), [2, 4), [4, 6), [6, 8), [8, inf)
    assert x.counts == (0, 1, 2, 2, 2, 3)
    window = [0.0, 1.0, 1.999, 2.0, 8.0, 100.0]
    sketched = _numeric(sketch(pa.table({"x": window}), reference), "x")
    assert sketched.counts == (1, 2, 1, 0, 0, 2)
    expected = np.bincount(np.searchsorted(x.edges, window, side="right"), minlength=6)
    assert sketched.counts == tuple(expected.tolist())


def test_zero_one_column_gets_one_bucket_per_value() -> None:
    values = [0] * 70 + [1] * 30
    x = _numeric(profile_table(pa.table({"x": values})), "x")
    assert (x.edges, x.counts) == ((0.0, 1.0), (0, 70, 30))
    rare = _numeric(profile_table(pa.table({"x": [0] * 99 + [1]})), "x")
    assert (rare.edges, rare.counts) == ((0.0, 1.0), (0, 99, 1))


def test_mean_std_and_quantiles_come_from_the_profile() -> None:
    values = np.arange(1000, dtype=np.float64)
    x = _numeric(profile_table(pa.table({"x": values})), "x")
    assert x.mean == pytest.approx(values.mean())
    assert x.std == pytest.approx(values.std())
    assert (x.quantile(0), x.quantile(1)) == (0.0, 999.0)
    assert x.quantile(0.5) == pytest.approx(500, abs=5)
    assert x.quantile(0.9) == pytest.approx(900, abs=5)
    with pytest.raises(InvalidArgumentError) as info:
        x.quantile(1.5)
    assert info.value.details["field"] == "q"


def test_numeric_profile_rejects_inconsistent_counts() -> None:
    with pytest.raises(InvalidArgumentError, match="len"):
        NumericProfile(count=1, missing=0, edges=(1.0,), counts=(1,))


# -- sketch and merge --------------------------------------------------------------------------


def test_merge_of_sketches_equals_sketch_of_the_concatenation() -> None:
    reference = profile_table(_mixed_table(2000, seed=1))
    first, second = _mixed_table(700, seed=2, shift=0.5), _mixed_table(500, seed=3, shift=-1.0)
    merged = sketch(first, reference).merge(sketch(second, reference))
    whole = sketch(pa.concat_tables([first, second]), reference)
    assert merged.num_rows == whole.num_rows == 1200
    for name, column in whole.columns.items():
        got = merged.columns[name]
        if isinstance(column, NumericProfile):
            assert isinstance(got, NumericProfile)
            assert (got.edges, got.counts, got.count, got.missing) == (
                column.edges,
                column.counts,
                column.count,
                column.missing,
            )
            assert (got.min, got.max) == (column.min, column.max)
            assert got.sum == pytest.approx(column.sum)
            assert got.sum_sq == pytest.approx(column.sum_sq)
        else:
            assert got == column


def test_categorical_merge_keeps_top_100_and_folds_the_rest_into_other() -> None:
    a = CategoricalProfile(count=60, missing=0, counts={f"a{i:02d}": 1 for i in range(60)})
    b = CategoricalProfile(count=62, missing=1, counts={f"b{i:02d}": 1 for i in range(60)}, other=2)
    merged = Profile(1, {"c": a}).merge(Profile(2, {"c": b})).columns["c"]
    assert isinstance(merged, CategoricalProfile)
    assert (merged.count, merged.missing, len(merged.counts), merged.other) == (122, 1, 100, 22)
    assert "b39" in merged.counts
    assert "b40" not in merged.counts


def test_merge_with_different_edges_names_the_column() -> None:
    a = profile_table(pa.table({"x": [1.0, 2.0, 3.0]}))
    b = profile_table(pa.table({"x": [5.0, 6.0]}))
    with pytest.raises(InvalidArgumentError, match=r"'x'.*edges") as info:
        a.merge(b)
    assert info.value.details == {"field": "edges", "column": "x"}


def test_merge_with_different_columns_or_kinds_fails() -> None:
    a = profile_table(pa.table({"x": [1.0]}))
    with pytest.raises(InvalidArgumentError, match="different columns"):
        a.merge(profile_table(pa.table({"y": [1.0]})))
    with pytest.raises(InvalidArgumentError, match="numeric in one profile and categorical"):
        a.merge(profile_table(pa.table({"x": ["a"]})))


def test_sketch_of_a_shifted_sample_fills_the_outer_buckets() -> None:
    rng = np.random.default_rng(7)
    reference = profile_table(pa.table({"x": rng.normal(0, 1, 5000)}))
    up = _numeric(sketch(pa.table({"x": rng.normal(10, 1, 1000)}), reference), "x")
    down = _numeric(sketch(pa.table({"x": rng.normal(-10, 1, 1000)}), reference), "x")
    assert up.counts[-1] == 1000
    assert down.counts[0] == 1000
    assert _numeric(reference, "x").counts[0] == 0


def test_sketch_counts_unseen_categories_and_handles_missing_and_extra_columns() -> None:
    reference = profile_table(pa.table({"s": ["a", "b"], "x": [1.0, 2.0], "o": [[1], [2]]}))
    window = pa.table({"s": ["a", "new", "new"], "extra": [1, 2, 3]})
    sketched = sketch(window, reference)
    assert list(sketched.columns) == ["s", "x", "o", "extra"]
    assert _categorical(sketched, "s").counts == {"new": 2, "a": 1}
    x = _numeric(sketched, "x")
    assert (x.count, x.missing, x.edges, x.counts) == (0, 3, (1.0, 2.0), (0, 0, 0))
    assert sketched.columns["o"] == OtherProfile(count=0, missing=3)
    assert _numeric(sketched, "extra").edges == (1.0, 2.0, 3.0)


# -- diff --------------------------------------------------------------------------------------


def test_diff_reports_statistics_and_psi() -> None:
    rng = np.random.default_rng(3)
    reference = profile_table(pa.table({"x": rng.normal(0, 1, 5000), "s": ["a", "b"] * 2500}))
    same = reference.diff(reference)
    assert [d.column for d in same] == ["x", "s"]
    assert same[0].psi == pytest.approx(0.0)
    window = pa.table({"x": rng.normal(2, 1, 1000), "s": ["a"] * 900 + ["c"] * 100})
    x, s = reference.diff(sketch(window, reference))
    assert x.kind == "numeric"
    assert x.changes["mean"][1] == pytest.approx(2, abs=0.2)
    assert set(x.changes) == {"missing_rate", "mean", "std", "min", "max"}
    assert x.psi is not None
    assert x.psi > 1
    assert s.changes["share:a"] == (0.5, 0.9)
    assert s.changes["share:c"] == (0.0, 0.1)
    assert s.psi is not None
    assert s.psi > 0.25
    assert _json_round_trip(x.to_dict())["column"] == "x"


def test_diff_works_across_different_edges() -> None:
    values = np.arange(1000, dtype=np.float64)
    coarse = profile_table(pa.table({"x": values}), bins=5)
    fine = profile_table(pa.table({"x": values}), bins=50)
    (delta,) = coarse.diff(fine)
    assert delta.psi == pytest.approx(0.0, abs=1e-3)
    assert delta.changes["mean"] == (499.5, 499.5)


# -- profile JSON, determinism, inputs ---------------------------------------------------------


def test_profile_round_trips_through_small_strict_json() -> None:
    profile = profile_table(_mixed_table(20_000))
    text = json.dumps(profile.to_dict(), allow_nan=False)
    assert len(text.encode()) < 50_000
    assert Profile.from_dict(json.loads(text)) == profile
    odd = profile_table(pa.table({"x": [INF, -INF, 1.0]}))
    encoded = _json_round_trip(odd.to_dict())
    assert encoded["columns"]["x"]["sum"] == "nan"
    assert Profile.from_dict(encoded).to_dict() == odd.to_dict()


def test_profile_from_dict_rejects_malformed_input() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Profile.from_dict({"num_rows": 1, "columns": {"x": {"kind": "numeric"}}})
    assert info.value.details["field"] == "d"
    with pytest.raises(InvalidArgumentError, match="version"):
        Profile.from_dict({"version": 99, "num_rows": 0, "columns": {}})


def test_describe_is_deterministic() -> None:
    table = _mixed_table(5000)
    first, second = describe(table), describe(table)
    assert first == second
    assert json.dumps(first[1].to_dict()) == json.dumps(second[1].to_dict())


def test_pandas_dataframe_input_matches_arrow() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.0, None, 3.0], "s": ["a", "b", None], "b": [True, False, True]})
    schema, profile = describe(frame)
    assert schema.names == ("x", "s", "b")
    assert (schema.column("x").null_count, schema.column("s").kind) == (1, "categorical")
    assert profile == profile_table(pa.Table.from_pandas(frame, preserve_index=False))
    assert sketch(frame, profile).num_rows == 3


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: describe([1, 2, 3]), "table"),
        (lambda: describe(pa.table({"x": [1]}), bins=1), "bins"),
        (lambda: profile_table(pa.table({"x": [1]}), bins=True), "bins"),
        (lambda: sketch(pa.table({"x": [1]}), like={"x": 1}), "like"),  # type: ignore[arg-type]
        (lambda: infer_schema(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"])), "table"),
    ],
)
def test_bad_input_names_the_field(call: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"'{field}'") as info:
        call()
    assert info.value.details["field"] == field


def test_low_cardinality_integers_get_value_frequencies() -> None:
    table = pa.table({"label": [1, 0, 1, 1, None], "id": list(range(5)) * 1})
    schema = infer_schema(table)
    assert schema.column("label").categories == {"1": 3, "0": 1}
    wide = pa.table({"id": list(range(100))})
    assert infer_schema(wide).column("id").categories is None
